# tfhe targets
fhegpt_add_test(test-tfhe-commons SOURCES test-tfhe-commons.cpp LIBS fhegpt_tfhe)
fhegpt_add_test(test-tfhe-lwe SOURCES test-tfhe-lwe.cpp LIBS fhegpt_tfhe)
fhegpt_add_test(test-tfhe-pbs SOURCES test-tfhe-pbs.cpp LIBS fhegpt_tfhe)
fhegpt_add_test(test-tfhe-multi-bit SOURCES test-tfhe-multi-bit.cpp LIBS fhegpt_tfhe)

# The same checks on every production parameter set (> 20,000 bootstraps): label `slow`, so
# that the sanitizer run can skip them (ctest -LE slow); the normal run includes them.
add_executable(test-tfhe-pbs-production test-tfhe-pbs.cpp)
target_link_libraries(test-tfhe-pbs-production PRIVATE fhegpt_tfhe GTest::gtest GTest::gtest_main)
target_compile_definitions(test-tfhe-pbs-production PRIVATE FHEGPT_TFHE_PRODUCTION=1)
gtest_discover_tests(test-tfhe-pbs-production DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 1800 LABELS slow)

# Noise model against measurements on every production set (keys of every size): label `slow`.
add_executable(test-tfhe-noise test-tfhe-noise.cpp)
target_link_libraries(test-tfhe-noise PRIVATE fhegpt_tfhe GTest::gtest GTest::gtest_main)
gtest_discover_tests(test-tfhe-noise DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 1800 LABELS slow)
