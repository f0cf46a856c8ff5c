# tfhe targets
add_executable(bench-tfhe-pbs bench-tfhe-pbs.cpp)
target_link_libraries(bench-tfhe-pbs PRIVATE fhegpt_tfhe benchmark::benchmark)
