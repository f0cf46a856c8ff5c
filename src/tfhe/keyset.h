// Client and server keys of one parameter set, and the calls a circuit executor makes.
//
// ClientKey (secret, stays with the user): the small LWE key s (dimension n) and the GLWE key
// S (k, N), whose LWE reading is the big key under which all ciphertexts live between
// bootstraps (KS-PBS order: key switch big -> small, bootstrap small -> big).
// ServerKey (public evaluation keys): the key-switching key (big -> small) and the
// bootstrapping key in the Fourier domain, and for sets with has_fine_bootstrap() a second
// bootstrapping key of the same keys at the finer decomposition. CompressedServerKey: the seeded forms that a client
// uploads (n' l 32-bit bodies + seed, n l (k+1) N bodies + seed; for a multi-bit set
// (n / g) 2^g l (k + 1) N bodies).
#pragma once

#include "common/thread_pool.h"
#include "tfhe/bootstrap_accelerator.h"
#include "tfhe/algorithms/lookup_table_generation.h"
#include "tfhe/algorithms/lwe_batch_bootstrap.h"
#include "tfhe/commons/csprng.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/entities/fourier_lwe_bootstrap_key.h"
#include "tfhe/entities/glwe_secret_key.h"
#include "tfhe/entities/lookup_table.h"
#include "tfhe/entities/lwe_ciphertext.h"
#include "tfhe/entities/lwe_keyswitch_key.h"
#include "tfhe/entities/lwe_secret_key.h"
#include "tfhe/entities/seeded_lwe_bootstrap_key.h"
#include "tfhe/entities/seeded_lwe_ciphertext.h"
#include "tfhe/entities/seeded_lwe_keyswitch_key.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace fhegpt::tfhe {

// Which of a server key's bootstrapping keys a bootstrap uses.
enum class BootstrapKeyKind : uint8_t { standard, fine };

struct ClientKey {
    TfheParameters parameters;
    LweSecretKey lwe_secret_key;      // small key, dimension n
    GlweSecretKey glwe_secret_key;    // (k, N)
    LweSecretKey big_lwe_secret_key;  // glwe_secret_key read as an LWE key, dimension k N
};

struct ServerKey {
    TfheParameters parameters;
    LweKeyswitchKey keyswitch_key;
    FourierLweBootstrapKey bootstrap_key;
    std::optional<FourierLweBootstrapKey> fine_bootstrap_key; // iff parameters.has_fine_bootstrap()
    // Where batches run when set (a GPU holding these keys, cuda/bootstrap_device.h); else the CPU.
    std::shared_ptr<BootstrapAccelerator> accelerator;

    size_t size_bytes() const {
        return keyswitch_key.size_bytes() + bootstrap_key.size_bytes() +
               (fine_bootstrap_key ? fine_bootstrap_key->size_bytes() : 0);
    }
    // The bootstrapping key of `kind` (fail()s for a fine key this set does not have).
    const FourierLweBootstrapKey & bootstrap_key_of(BootstrapKeyKind kind) const;
};

struct CompressedServerKey {
    TfheParameters parameters;
    SeededLweKeyswitchKey keyswitch_key;
    SeededLweBootstrapKey bootstrap_key;
    std::optional<SeededLweBootstrapKey> fine_bootstrap_key; // iff parameters.has_fine_bootstrap()
};

// Fresh secret keys from the OS CSPRNG.
ClientKey generate_client_key(const TfheParameters & params);
CompressedServerKey generate_compressed_server_key(const ClientKey & client_key);
ServerKey decompress_server_key(const CompressedServerKey & compressed);
ServerKey generate_server_key(const ClientKey & client_key);

// Encryption of m in Z_p under the big key, with the GLWE noise of the set (fresh ciphertexts).
LweCiphertext encrypt_message(const ClientKey & key, uint64_t message, uint64_t message_modulus);
LweCiphertext encrypt_message(const ClientKey & key, uint64_t message, uint64_t message_modulus,
                              RandomGenerator & secret_generator);
SeededLweCiphertext encrypt_message_seeded(const ClientKey & key, uint64_t message, uint64_t message_modulus,
                                           const Seed & seed, uint64_t stream);
uint64_t decrypt_message(const ClientKey & key, const LweCiphertext & ciphertext, uint64_t message_modulus);
// The phase (message + noise) of a ciphertext under the big key.
uint64_t decrypt_phase(const ClientKey & key, const LweCiphertext & ciphertext);

// A lookup table Z_p -> Z_q for this key's polynomial size.
LookupTable generate_lookup_table(const ServerKey & key, uint64_t input_modulus, uint64_t output_modulus,
                                  const MessageFunction & f);
// Scratch for batches on `pool` (allocate once, reuse for every batch).
BootstrapWorkspace allocate_bootstrap_workspace(const ServerKey & key, ThreadPool & pool = ThreadPool::global(),
                                                BootstrapKeyKind kind = BootstrapKeyKind::standard);
// One key switch + bootstrap on the calling thread, with the scratch of workspace thread 0
// (one caller at a time per workspace).
void keyswitch_bootstrap(const ServerKey & key, const LweCiphertext & input, LweCiphertext & output,
                         const LookupTable & lut, BootstrapWorkspace & workspace);
// A batch of independent key switch + bootstraps on every thread of `pool`; luts: one for all
// or one per input; outputs[c * F + j] for many-LUT tables with F functions.
void batch_keyswitch_bootstrap(const ServerKey & key, std::span<const LweCiphertext> inputs,
                               std::span<LweCiphertext> outputs, std::span<const LookupTable * const> luts,
                               BootstrapWorkspace & workspace, ThreadPool & pool = ThreadPool::global());
void batch_keyswitch_bootstrap(const ServerKey & key, std::span<const LweCiphertext * const> inputs,
                               std::span<LweCiphertext * const> outputs, std::span<const LookupTable * const> luts,
                               BootstrapWorkspace & workspace, ThreadPool & pool = ThreadPool::global());
// The same with the bootstrapping key of `kind` (a workspace allocated for that kind).
void batch_keyswitch_bootstrap(const ServerKey & key, BootstrapKeyKind kind,
                               std::span<const LweCiphertext * const> inputs, std::span<LweCiphertext * const> outputs,
                               std::span<const LookupTable * const> luts, BootstrapWorkspace & workspace,
                               ThreadPool & pool = ThreadPool::global());
// An output ciphertext of the right (big) dimension, zero.
LweCiphertext allocate_lwe_ciphertext(const ServerKey & key);

} // namespace fhegpt::tfhe
