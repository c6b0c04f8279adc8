"""Before spending GPU time: `validate` (specs, configs by LLaMA-Factory's own parser, data), `doctor` (this
machine), `estimate` (memory) and the hardware profiles they check against."""
