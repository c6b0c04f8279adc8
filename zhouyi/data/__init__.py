"""The data pipeline: scraped dream pages -> a clean alpaca dataset with a report."""
