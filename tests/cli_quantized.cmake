# The quantized-part commands end to end on the bundled model, run as a user would (from the
# source tree, so that models/ and data/ resolve): compile, eval and run-encrypted for one head
# and the whole attention block, and their errors. (JSON keys come out sorted, hence the order
# in the patterns.)
set(FHEGPT_CLI $<TARGET_FILE:fhegpt>)

add_test(NAME cli.compile.attn_json
         COMMAND ${FHEGPT_CLI} compile --part layer0.attn --n-bits 4 --seq-len 3 --json
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.compile.attn_json PROPERTIES PASS_REGULAR_EXPRESSION
  "\"max_bit_width\": 4.*\"parameter_set\": \"PARAM_4BIT_2M128_MIXED\".*\"pbs_total\": [1-9][0-9]+.*\"context_by_head\"")

add_test(NAME cli.eval.head_and_attn
         COMMAND ${FHEGPT_CLI} eval --part layer0.head0,layer0.attn --n-bits 4,6 --max-prompts 3
                 --csv ${CMAKE_CURRENT_BINARY_DIR}/cli-eval.csv --plot ${CMAKE_CURRENT_BINARY_DIR}/cli-eval.svg
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.eval.head_and_attn PROPERTIES PASS_REGULAR_EXPRESSION
  "layer0.head0 n_bits  4 [^\n]*top-1 (0\\.[0-9]+|1\\.0000)[^\n]*mean KL 0\\.[0-9]+.*layer0.attn n_bits  6 [^\n]*top-1 (0\\.[0-9]+|1\\.0000).*wrote")
add_test(NAME cli.eval.nearest_weights
         COMMAND ${FHEGPT_CLI} eval --part layer0.head0 --n-bits 3 --weight-rounding nearest --max-prompts 2
                 --csv ${CMAKE_CURRENT_BINARY_DIR}/cli-eval-nearest.csv --plot ${CMAKE_CURRENT_BINARY_DIR}/cli-eval-nearest.svg
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.eval.nearest_weights PROPERTIES PASS_REGULAR_EXPRESSION "n_bits  3 [^\n]*mean KL 0\\.[0-9]+")
add_test(NAME cli.errors.weight_rounding
         COMMAND ${FHEGPT_CLI} compile --part layer0.head0 --n-bits 4 --weight-rounding round-up
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.errors.weight_rounding PROPERTIES PASS_REGULAR_EXPRESSION "round-up not in \\{nearest,gptq\\}")

add_test(NAME cli.run_encrypted.head_insecure
         COMMAND ${FHEGPT_CLI} run-encrypted --part layer0.head0 --n-bits 4 -p "The king said"
                 --params INSECURE_TEST_4BIT_PBS_L2 --json
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.run_encrypted.head_insecure PROPERTIES LABELS slow PASS_REGULAR_EXPRESSION
  "insecure test parameter set.*\"mismatches\": 0,.*\"pbs_total\": [1-9][0-9]+.*\"values\": 192")

add_test(NAME cli.errors.part_out_of_range
         COMMAND ${FHEGPT_CLI} compile --part layer9.attn --n-bits 4
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.errors.part_out_of_range PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli.errors.part_message
         COMMAND ${FHEGPT_CLI} compile --part layer9.attn --n-bits 4
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.errors.part_message PROPERTIES PASS_REGULAR_EXPRESSION "the model has 4 layers")

# Generation with the head on ciphertexts equals generation with its simulation, token for token.
add_test(NAME cli.generate.encrypted_equals_simulated
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli-generate-encrypted.sh ${FHEGPT_CLI}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.generate.encrypted_equals_simulated PROPERTIES LABELS slow)

# A parameter set too narrow for the part's lookups is refused before any key is made.
add_test(NAME cli.errors.narrow_params
         COMMAND ${FHEGPT_CLI} run-encrypted --part layer0.head0 --n-bits 4 -p "The king" --params PARAM_2BIT_2M128
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.errors.narrow_params PROPERTIES PASS_REGULAR_EXPRESSION
  "--params PARAM_2BIT_2M128: 2 message bits, the part's lookups read 4")

# Whole blocks: the MLP half of the last layer (the cheapest block part) through compile (the cost
# of a token by layer), eval, generate --simulate and, on insecure parameters, run-encrypted; and
# the errors for parts the model does not have.
add_test(NAME cli.compile.blocks_json
         COMMAND ${FHEGPT_CLI} compile --part layer3.mlp --n-bits 4 --seq-len 8 --kv-cache --json
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.compile.blocks_json PROPERTIES PASS_REGULAR_EXPRESSION
  "\"part\": \"layer3.mlp\".*\"pbs_by_layer\": {[^}]*\"layer3\": [1-9][0-9]+.*\"pbs_total\": [1-9][0-9]+.*\"residual\": [0-9]+")
add_test(NAME cli.eval.blocks
         COMMAND ${FHEGPT_CLI} eval --part layer3.mlp --n-bits 4 --max-prompts 2
                 --csv ${CMAKE_CURRENT_BINARY_DIR}/cli-eval-blocks.csv --plot ${CMAKE_CURRENT_BINARY_DIR}/cli-eval-blocks.svg
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.eval.blocks PROPERTIES PASS_REGULAR_EXPRESSION
  "layer3.mlp n_bits  4 [^\n]*top-1 (0\\.[0-9]+|1\\.0000)[^\n]*mean KL 0\\.[0-9]+.*wrote")
add_test(NAME cli.generate.blocks_simulated
         COMMAND ${FHEGPT_CLI} generate -m models/fhegpt-tiny -p "The king" -n 2 --temperature 0 --simulate layer3.mlp
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.generate.blocks_simulated PROPERTIES PASS_REGULAR_EXPRESSION
  "layer3.mlp at 4 bits, clear simulation.*generated: 2 tokens")
add_test(NAME cli.run_encrypted.blocks_insecure
         COMMAND ${FHEGPT_CLI} run-encrypted --part layer3.mlp --n-bits 4 -p "The" --params INSECURE_TEST_4BIT_MIXED --json
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.run_encrypted.blocks_insecure PROPERTIES LABELS slow PASS_REGULAR_EXPRESSION
  "\"mismatches\": 0,.*\"part\": \"layer3.mlp\".*\"pbs_total\": [1-9][0-9]+")
foreach(bad "layers3-1;layer 3 comes after layer 1" "layers2-7;the model has 4 layers" "layer4;the model has 4 layers"
            "layer9.mlp;the model has 4 layers" "layer0.ffn;expected layerL.headH, layerL.attn, layerL.mlp, layerL, layersA-B or all")
  list(GET bad 0 part)
  list(GET bad 1 message)
  add_test(NAME cli.errors.part_${part}
           COMMAND ${FHEGPT_CLI} compile --part ${part} --n-bits 4
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(cli.errors.part_${part} PROPERTIES PASS_REGULAR_EXPRESSION "${message}")
endforeach()
