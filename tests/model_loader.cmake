# model_loader targets
fhegpt_add_test(test-model-safetensors SOURCES test-model-safetensors.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-load SOURCES test-model-load.cpp LIBS fhegpt_model nlohmann_json::nlohmann_json)
