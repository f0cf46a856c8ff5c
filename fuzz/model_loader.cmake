# model_loader targets
fhegpt_add_fuzzer(fuzz-safetensors SOURCES fuzz-safetensors.cpp LIBS fhegpt_model)
fhegpt_add_fuzzer(fuzz-gpt2-config SOURCES fuzz-gpt2-config.cpp LIBS fhegpt_model)
