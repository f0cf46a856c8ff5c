# tfhe targets
add_executable(bench-tfhe-pbs bench-tfhe-pbs.cpp)
target_link_libraries(bench-tfhe-pbs PRIVATE fhegpt_tfhe benchmark::benchmark)
add_executable(bench-tfhe-multi-bit bench-tfhe-multi-bit.cpp)
target_link_libraries(bench-tfhe-multi-bit PRIVATE fhegpt_tfhe benchmark::benchmark)
