// FHEGPT_HOST_DEVICE marks the small per-coefficient functions that both the CPU engine and the
// CUDA kernels (tfhe/cuda/) call: __host__ __device__ under nvcc, nothing in plain C++ builds,
// so that one definition serves both and the CPU tests exercise what the kernels run.
#pragma once

#if defined(__CUDACC__)
#define FHEGPT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FHEGPT_HOST_DEVICE inline
#endif
