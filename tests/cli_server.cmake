# fhegpt-server and `fhegpt generate --server`: two processes on loopback (insecure test keys).
set(FHEGPT_SERVER_CLI $<TARGET_FILE:fhegpt-server>)

# Encrypted generation through the server equals the clear simulation token for token, with the
# server's encrypted KV cache and against a simulation that recomputes the sequence.
foreach(part layer0.head0 layer0.attn)
  add_test(NAME cli.server.generate_equals_simulated.${part}
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli-server-generate.sh ${FHEGPT_CLI} ${FHEGPT_SERVER_CLI} ${part}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(cli.server.generate_equals_simulated.${part} PROPERTIES LABELS slow TIMEOUT 900)
endforeach()

# Clear errors: no server listening, --server without a part, a server URL that is not http.
add_test(NAME cli.server.errors.no_server
         COMMAND ${FHEGPT_CLI} generate -m models/fhegpt-tiny -p "The king" -n 1 --server http://127.0.0.1:1 --encrypt layer0.head0
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.server.errors.no_server PROPERTIES PASS_REGULAR_EXPRESSION "http://127.0.0.1:1: GET /v1/info failed")
add_test(NAME cli.server.errors.no_part
         COMMAND ${FHEGPT_CLI} generate -m models/fhegpt-tiny -p "The king" -n 1 --server http://127.0.0.1:1
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.server.errors.no_part PROPERTIES PASS_REGULAR_EXPRESSION "--server: name the part it serves with --encrypt")
add_test(NAME cli.server.errors.bad_url
         COMMAND ${FHEGPT_CLI} generate -m models/fhegpt-tiny -p "The king" -n 1 --server ftp:/x --encrypt layer0.head0
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.server.errors.bad_url PROPERTIES PASS_REGULAR_EXPRESSION "expected http://HOST:PORT")
# The server refuses a context it cannot hold.
add_test(NAME cli.server.errors.max_positions
         COMMAND ${FHEGPT_SERVER_CLI} -m models/fhegpt-tiny --part layer0.head0 --max-positions 100000 --port 0
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.server.errors.max_positions PROPERTIES PASS_REGULAR_EXPRESSION "--max-positions")

# The README's main command: the demo on production keys (a few minutes).
add_test(NAME cli.demo COMMAND ${FHEGPT_CLI} demo -n 2 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.demo PROPERTIES LABELS slow TIMEOUT 1200 PASS_REGULAR_EXPRESSION
  "estimate: [0-9]+ bootstraps, about [0-9]+ s at the speed measured on .*encrypted == simulated: yes"
  ENVIRONMENT "FHEGPT_CACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/cache")
