# net targets: the client/server protocol (message codecs, manifests, the session table) and an
# in-process part server driven over HTTP by RemotePart clients and raw requests.
fhegpt_add_test(test-net-protocol SOURCES test-net-protocol.cpp
                LIBS fhegpt_net nlohmann_json::nlohmann_json)
# The HTTP layer under hostile clients: raw sockets against toy routes (no cryptography).
fhegpt_add_test(test-net-http SOURCES test-net-http.cpp LIBS fhegpt_net)
fhegpt_add_test(test-net-server SOURCES test-net-server.cpp
                LIBS fhegpt_net PkgConfig::HTTPLIB nlohmann_json::nlohmann_json)
# The budget, cancellation and session calls under load (evaluations held at a gate).
fhegpt_add_test(test-net-server-budget SOURCES test-net-server-budget.cpp
                LIBS fhegpt_net PkgConfig::HTTPLIB nlohmann_json::nlohmann_json)
