# model_tokenizer targets: GPT-2's BPE tokenizer against tiktoken's ids, loading of other
# vocabularies, and the `fhegpt tokenize` command.
fhegpt_add_test(test-model-tokenizer SOURCES test-model-tokenizer.cpp LIBS fhegpt_model)
fhegpt_add_test(test-model-tokenizer-load SOURCES test-model-tokenizer-load.cpp LIBS fhegpt_model)
if(TARGET fhegpt)
  add_test(NAME tokenizer-cli
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/data/tokenizer/cli_test.sh
                   $<TARGET_FILE:fhegpt> ${PROJECT_SOURCE_DIR})
  set_tests_properties(tokenizer-cli PROPERTIES TIMEOUT 120)
endif()
