# model_forward targets: the clear forward pass, the attention seam, sampling, generation.
fhegpt_add_test(test-model-forward SOURCES test-model-forward.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-bundled SOURCES test-model-bundled.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-attention-seam SOURCES test-model-attention-seam.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-block-seam SOURCES test-model-block-seam.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-sampling SOURCES test-model-sampling.cpp LIBS fhegpt_model)
# test-model-generate also runs the fhegpt binary (generate / perplexity commands).
fhegpt_add_test(test-model-generate SOURCES test-model-generate.cpp LIBS fhegpt_model)
add_dependencies(test-model-generate fhegpt)
target_compile_definitions(test-model-generate PRIVATE FHEGPT_BINARY="$<TARGET_FILE:fhegpt>")
