"""`zhouyi export`, as a library: the quality gate (gate), the merge and GPTQ (merge), the GGUF for llama.cpp and
Ollama (gguf), and the parity check that the export answers as the evaluated model did (parity)."""
