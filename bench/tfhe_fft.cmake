# tfhe fft targets
add_executable(bench-tfhe-fft bench-tfhe-fft.cpp)
target_link_libraries(bench-tfhe-fft PRIVATE fhegpt_tfhe_fft benchmark::benchmark)
