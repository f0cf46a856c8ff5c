#include "tfhe/cuda/cuda_bootstrap_backend.h"

#include "common/check.h"
#include "common/error.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/cuda/pbs_kernels.h"

#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace fhegpt::tfhe {

namespace {

void check_cuda(cudaError_t status, const char * what) {
    if (status != cudaSuccess) fail("CUDA {}: {}", what, cudaGetErrorString(status));
}

void check_cufft(cufftResult status, const char * what) {
    if (status != CUFFT_SUCCESS) fail("cuFFT {}: error {}", what, static_cast<int>(status));
}

// Device memory that grows on demand and is freed with its owner.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer & operator=(const DeviceBuffer &) = delete;
    ~DeviceBuffer() {
        if (data_) cudaFree(data_);
    }
    void reserve(size_t bytes) {
        if (bytes <= bytes_) return;
        if (data_) check_cuda(cudaFree(data_), "free");
        data_ = nullptr;
        bytes_ = 0;
        check_cuda(cudaMalloc(&data_, bytes), "malloc");
        bytes_ = bytes;
    }
    template <class T> T * as() const { return static_cast<T *>(data_); }
    size_t bytes() const { return bytes_; }

private:
    void * data_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory (fast, asynchronous copies), growing on demand.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(const PinnedBuffer &) = delete;
    PinnedBuffer & operator=(const PinnedBuffer &) = delete;
    ~PinnedBuffer() {
        if (data_) cudaFreeHost(data_);
    }
    uint64_t * reserve(size_t elements) {
        if (elements > elements_) {
            if (data_) check_cuda(cudaFreeHost(data_), "free host");
            data_ = nullptr;
            elements_ = 0;
            check_cuda(cudaMallocHost(reinterpret_cast<void **>(&data_), elements * sizeof(uint64_t)), "malloc host");
            elements_ = elements;
        }
        return data_;
    }

private:
    uint64_t * data_ = nullptr;
    size_t elements_ = 0;
};

constexpr size_t kComplexBytes = 2 * sizeof(double);

} // namespace

struct CudaBootstrapBackend::DeviceState {
    struct RotationKey {
        bool present = false;
        cuda::RotationShape shape{};
        DeviceBuffer spectra; // n rows (k + 1) polynomials of N / 2 complex values
    };

    cudaStream_t stream = nullptr;
    std::string device_name;
    cuda::KeyswitchShape keyswitch_shape{};
    DeviceBuffer keyswitch_key;
    RotationKey rotation[2]; // by BootstrapKeyKind
    DeviceBuffer twist;      // N / 2 complex values (both kinds share N)
    std::map<std::pair<size_t, size_t>, cufftHandle> plans; // (N, transforms) -> plan

    // Batch scratch, grown to the largest chunk seen.
    DeviceBuffer inputs, small, switched, accumulators, digit_spectra, output_spectra, outputs;
    DeviceBuffer luts, lut_of, slot_stride;
    PinnedBuffer host_inputs, host_outputs;

    ~DeviceState() {
        for (auto & entry : plans) cufftDestroy(entry.second);
        if (stream) cudaStreamDestroy(stream);
    }

    // A batched complex-to-complex plan of `transforms` transforms of size N / 2 on the stream.
    cufftHandle plan(size_t polynomial_size, size_t transforms) {
        const auto key = std::make_pair(polynomial_size, transforms);
        auto it = plans.find(key);
        if (it != plans.end()) return it->second;
        cufftHandle handle = 0;
        int size = static_cast<int>(polynomial_size / 2);
        check_cufft(cufftPlanMany(&handle, 1, &size, nullptr, 1, size, nullptr, 1, size, CUFFT_Z2Z,
                                  static_cast<int>(transforms)),
                    "plan");
        check_cufft(cufftSetStream(handle, stream), "set stream");
        plans.emplace(key, handle);
        return handle;
    }
};

namespace {

// GGSWs converted per upload step: bounds the host and device staging memory.
constexpr size_t kGgswsPerUpload = 64;

// Uploads a classic Fourier bootstrapping key: each polynomial back to torus coefficients by
// the CPU's inverse transform, then folded, twisted and transformed by cuFFT on the device.
void upload_rotation_key(const FourierLweBootstrapKey & bsk, auto & state, auto & rotation) {
    const size_t n = bsk.input_lwe_dimension.value, k1 = bsk.glwe_dimension.value + 1;
    const size_t big_n = bsk.polynomial_size.value, half = big_n / 2;
    const size_t polys_per_ggsw = bsk.row_count() * k1;
    rotation.present = true;
    rotation.shape = {n, bsk.glwe_dimension.value, big_n, bsk.base_log.value, bsk.level_count.value};
    rotation.spectra.reserve(n * polys_per_ggsw * half * kComplexBytes);

    const NegacyclicFft & fft = fft_plan(bsk.polynomial_size);
    aligned_vector<double> fourier(big_n);
    std::vector<uint64_t> coefficients(kGgswsPerUpload * polys_per_ggsw * big_n);
    DeviceBuffer staging;
    staging.reserve(coefficients.size() * sizeof(uint64_t));
    for (size_t first = 0; first < n; first += kGgswsPerUpload) {
        const size_t ggsws = std::min(kGgswsPerUpload, n - first), polys = ggsws * polys_per_ggsw;
        for (size_t p = 0; p < polys; ++p) {
            const double * src = bsk.ggsw(first) + p * big_n;
            std::copy(src, src + big_n, fourier.begin());
            fft.backward(fourier, std::span<uint64_t>(coefficients.data() + p * big_n, big_n));
        }
        check_cuda(cudaMemcpyAsync(staging.as<uint64_t>(), coefficients.data(), polys * big_n * sizeof(uint64_t),
                                   cudaMemcpyHostToDevice, state.stream),
                   "copy key");
        char * spectra = rotation.spectra.template as<char>() + first * polys_per_ggsw * half * kComplexBytes;
        cuda::launch_fold_torus(staging.as<uint64_t>(), state.twist.template as<void>(), spectra, polys, big_n,
                                state.stream);
        auto * z = reinterpret_cast<cufftDoubleComplex *>(spectra);
        check_cufft(cufftExecZ2Z(state.plan(big_n, polys), z, z, CUFFT_FORWARD), "key transform");
        // The staging buffer and `coefficients` are reused by the next step.
        check_cuda(cudaStreamSynchronize(state.stream), "key upload");
    }
}

} // namespace

bool cuda_backend_built() { return true; }

int cuda_device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" / "no driver" status
        return 0;
    }
    return count;
}

std::string cuda_device_description() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return cudaGetErrorString(status);
    }
    if (count == 0) return "no device";
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "device 0 unreadable";
    return fmt::format("{}, compute {}.{}, {} SMs, {} MiB", prop.name, prop.major, prop.minor,
                       prop.multiProcessorCount, prop.totalGlobalMem >> 20);
}

std::shared_ptr<BootstrapAccelerator> make_cuda_bootstrap_backend(const ServerKey & key) {
    return std::make_shared<CudaBootstrapBackend>(key);
}

CudaBootstrapBackend::CudaBootstrapBackend(const ServerKey & key, size_t max_chunk)
    : centred_modulus_switch_(key.parameters.modulus_switch == ModulusSwitchType::CenteredMeanNoiseReduction),
      max_chunk_(max_chunk), device_(std::make_unique<DeviceState>()) {
    if (cuda_device_count() == 0) fail("no CUDA device ({})", cuda_device_description());
    if (key.bootstrap_key.grouping_factor.is_multi_bit())
        fail("the CUDA backend runs classic bootstraps only; {} has a multi-bit key", key.parameters.name);
    FHEGPT_CHECK(max_chunk_ >= 1, "CUDA chunk of %zu", max_chunk_);
    DeviceState & state = *device_;
    check_cuda(cudaSetDevice(0), "set device");
    state.device_name = cuda_device_description();
    check_cuda(cudaStreamCreateWithFlags(&state.stream, cudaStreamNonBlocking), "stream");

    const LweKeyswitchKey & ksk = key.keyswitch_key;
    state.keyswitch_shape = {ksk.input_lwe_dimension.value, ksk.output_lwe_dimension.value, ksk.base_log.value,
                             ksk.level_count.value};
    FHEGPT_CHECK(ksk.base_log.value * ksk.level_count.value <= 32, "key switch decomposition past 32 bits");
    state.keyswitch_key.reserve(ksk.size_bytes());
    check_cuda(cudaMemcpy(state.keyswitch_key.as<void>(), ksk.data.data(), ksk.size_bytes(), cudaMemcpyHostToDevice),
               "copy key switching key");

    const size_t big_n = key.bootstrap_key.polynomial_size.value;
    state.twist.reserve(big_n / 2 * kComplexBytes);
    cuda::launch_twist_table(state.twist.as<void>(), big_n, state.stream);
    upload_rotation_key(key.bootstrap_key, state, state.rotation[0]);
    if (key.fine_bootstrap_key && !key.fine_bootstrap_key->grouping_factor.is_multi_bit()) {
        FHEGPT_CHECK_EQ(key.fine_bootstrap_key->polynomial_size.value, big_n);
        upload_rotation_key(*key.fine_bootstrap_key, state, state.rotation[1]);
    }
    check_cuda(cudaGetLastError(), "key upload kernels");
}

CudaBootstrapBackend::~CudaBootstrapBackend() = default;

bool CudaBootstrapBackend::serves(BootstrapKeyKind kind) const {
    return device_->rotation[static_cast<size_t>(kind)].present;
}

std::string CudaBootstrapBackend::description() const { return "cuda: " + device_->device_name; }

size_t CudaBootstrapBackend::key_bytes() const {
    return device_->keyswitch_key.bytes() + device_->rotation[0].spectra.bytes() + device_->rotation[1].spectra.bytes();
}

void CudaBootstrapBackend::batch_keyswitch_bootstrap(BootstrapKeyKind kind,
                                                     std::span<const LweCiphertext * const> inputs,
                                                     std::span<LweCiphertext * const> outputs,
                                                     std::span<const LookupTable * const> luts) {
    const size_t count = inputs.size();
    if (count == 0) return;
    DeviceState & state = *device_;
    const DeviceState::RotationKey & rotation = state.rotation[static_cast<size_t>(kind)];
    FHEGPT_CHECK(rotation.present, "the CUDA backend holds no bootstrapping key of this kind");
    const cuda::RotationShape & shape = rotation.shape;
    const size_t k = shape.glwe_dimension, k1 = k + 1, big_n = shape.polynomial_size, half = big_n / 2;
    const size_t n = shape.lwe_dimension, levels = shape.level_count, big_size = k * big_n + 1;
    FHEGPT_CHECK(luts.size() == 1 || luts.size() == count, "%zu tables for %zu inputs", luts.size(), count);
    FHEGPT_CHECK_EQ(state.keyswitch_shape.input_dimension, k * big_n);
    FHEGPT_CHECK_EQ(state.keyswitch_shape.output_dimension, n);
    const size_t functions = luts[0]->function_count;
    FHEGPT_CHECK_EQ(outputs.size(), count * functions);
    for (const LweCiphertext * input : inputs) FHEGPT_CHECK_EQ(input->data.size(), big_size);
    for (const LweCiphertext * output : outputs) FHEGPT_CHECK_EQ(output->data.size(), big_size);

    // Distinct tables, uploaded once per batch; lut_of[c]: the table of input c.
    std::unordered_map<const LookupTable *, uint32_t> table_index;
    std::vector<const LookupTable *> tables;
    std::vector<uint32_t> lut_of(count);
    for (size_t c = 0; c < count; ++c) {
        const LookupTable * lut = luts[luts.size() == 1 ? 0 : c];
        auto [it, added] = table_index.emplace(lut, static_cast<uint32_t>(tables.size()));
        if (added) {
            FHEGPT_CHECK(lut->polynomial_size.value == big_n && lut->polynomial.size() == big_n,
                         "lookup table of size %zu for N = %zu", lut->polynomial.size(), big_n);
            FHEGPT_CHECK(lut->function_count >= 1 && (lut->function_count - 1) * lut->slot_stride < big_n,
                         "lookup table with %zu functions of stride %zu", lut->function_count, lut->slot_stride);
            FHEGPT_CHECK_EQ(lut->function_count, functions);
            tables.push_back(lut);
        }
        lut_of[c] = it->second;
    }
    std::vector<uint64_t> table_data(tables.size() * big_n);
    std::vector<uint32_t> strides(tables.size());
    for (size_t t = 0; t < tables.size(); ++t) {
        std::copy(tables[t]->polynomial.begin(), tables[t]->polynomial.end(), table_data.begin() + t * big_n);
        strides[t] = static_cast<uint32_t>(tables[t]->slot_stride);
    }

    std::lock_guard lock(mutex_);
    cudaStream_t stream = state.stream;
    state.luts.reserve(table_data.size() * sizeof(uint64_t));
    state.slot_stride.reserve(strides.size() * sizeof(uint32_t));
    state.lut_of.reserve(count * sizeof(uint32_t));
    check_cuda(cudaMemcpyAsync(state.luts.as<void>(), table_data.data(), table_data.size() * sizeof(uint64_t),
                               cudaMemcpyHostToDevice, stream), "copy tables");
    check_cuda(cudaMemcpyAsync(state.slot_stride.as<void>(), strides.data(), strides.size() * sizeof(uint32_t),
                               cudaMemcpyHostToDevice, stream), "copy strides");
    check_cuda(cudaMemcpyAsync(state.lut_of.as<void>(), lut_of.data(), count * sizeof(uint32_t),
                               cudaMemcpyHostToDevice, stream), "copy table indices");

    const size_t chunk_capacity = std::min(count, max_chunk_);
    state.inputs.reserve(chunk_capacity * big_size * sizeof(uint64_t));
    state.small.reserve(chunk_capacity * (n + 1) * sizeof(uint64_t));
    state.switched.reserve(chunk_capacity * (n + 1) * sizeof(uint32_t));
    state.accumulators.reserve(chunk_capacity * k1 * big_n * sizeof(uint64_t));
    state.digit_spectra.reserve(chunk_capacity * k1 * levels * half * kComplexBytes);
    state.output_spectra.reserve(chunk_capacity * k1 * half * kComplexBytes);
    state.outputs.reserve(chunk_capacity * functions * big_size * sizeof(uint64_t));
    uint64_t * host_in = state.host_inputs.reserve(chunk_capacity * big_size);
    uint64_t * host_out = state.host_outputs.reserve(chunk_capacity * functions * big_size);

    for (size_t first = 0; first < count; first += max_chunk_) {
        const size_t m = std::min(max_chunk_, count - first);
        for (size_t c = 0; c < m; ++c)
            std::copy(inputs[first + c]->data.begin(), inputs[first + c]->data.end(), host_in + c * big_size);
        check_cuda(cudaMemcpyAsync(state.inputs.as<void>(), host_in, m * big_size * sizeof(uint64_t),
                                   cudaMemcpyHostToDevice, stream), "copy inputs");
        const uint32_t * chunk_lut_of = state.lut_of.as<uint32_t>() + first;
        cuda::launch_keyswitch(state.inputs.as<uint64_t>(), state.keyswitch_key.as<uint32_t>(),
                               state.small.as<uint64_t>(), m, state.keyswitch_shape, stream);
        cuda::launch_modulus_switch(state.small.as<uint64_t>(), state.switched.as<uint32_t>(), m, n, big_n, centred_modulus_switch_,
                                    stream);
        cuda::launch_initialize_accumulators(state.luts.as<uint64_t>(), chunk_lut_of, state.switched.as<uint32_t>(),
                                             state.accumulators.as<uint64_t>(), m, shape, stream);
        const cufftHandle forward = state.plan(big_n, m * k1 * levels);
        const cufftHandle inverse = state.plan(big_n, m * k1);
        auto * digits = state.digit_spectra.as<cufftDoubleComplex>();
        auto * products = state.output_spectra.as<cufftDoubleComplex>();
        for (size_t i = 0; i < n; ++i) {
            cuda::launch_rotate_decompose(state.accumulators.as<uint64_t>(), state.switched.as<uint32_t>(),
                                          state.twist.as<void>(), digits, m, i, shape, stream);
            check_cufft(cufftExecZ2Z(forward, digits, digits, CUFFT_FORWARD), "forward");
            cuda::launch_multiply_key(digits, rotation.spectra.as<void>(), products, m, i, shape, stream);
            check_cufft(cufftExecZ2Z(inverse, products, products, CUFFT_INVERSE), "inverse");
            cuda::launch_untwist_add(products, state.twist.as<void>(), state.accumulators.as<uint64_t>(), m, shape,
                                     stream);
        }
        cuda::launch_sample_extract(state.accumulators.as<uint64_t>(), chunk_lut_of, state.slot_stride.as<uint32_t>(),
                                    state.outputs.as<uint64_t>(), m, functions, shape, stream);
        check_cuda(cudaGetLastError(), "bootstrap kernels");
        check_cuda(cudaMemcpyAsync(host_out, state.outputs.as<void>(), m * functions * big_size * sizeof(uint64_t),
                                   cudaMemcpyDeviceToHost, stream), "copy outputs");
        check_cuda(cudaStreamSynchronize(stream), "bootstrap batch");
        for (size_t o = 0; o < m * functions; ++o)
            std::copy(host_out + o * big_size, host_out + (o + 1) * big_size,
                      outputs[first * functions + o]->data.begin());
    }
}

} // namespace fhegpt::tfhe
