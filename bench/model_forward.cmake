# model_forward targets
add_executable(bench-model-forward bench-model-forward.cpp)
target_link_libraries(bench-model-forward PRIVATE fhegpt_model benchmark::benchmark)
target_compile_definitions(bench-model-forward PRIVATE FHEGPT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
