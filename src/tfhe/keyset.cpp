#include "tfhe/keyset.h"

#include "common/check.h"
#include "common/error.h"
#include "tfhe/algorithms/lwe_bootstrap_key_generation.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/algorithms/lwe_keyswitch.h"
#include "tfhe/algorithms/secret_key_generation.h"
#include "tfhe/commons/torus.h"

#include <vector>

namespace fhegpt::tfhe {

ClientKey generate_client_key(const TfheParameters & params) {
    RandomGenerator secret = RandomGenerator::from_os();
    ClientKey key;
    key.parameters = params;
    key.lwe_secret_key = generate_binary_lwe_secret_key(params.lwe_dimension, secret);
    key.glwe_secret_key = generate_binary_glwe_secret_key(params.glwe_dimension, params.polynomial_size, secret);
    key.big_lwe_secret_key = key.glwe_secret_key.as_lwe_secret_key();
    return key;
}

CompressedServerKey generate_compressed_server_key(const ClientKey & client_key) {
    const TfheParameters & p = client_key.parameters;
    CompressedServerKey key;
    key.parameters = p;
    key.keyswitch_key = generate_seeded_lwe_keyswitch_key(client_key.big_lwe_secret_key, client_key.lwe_secret_key,
                                                          p.ks_base_log, p.ks_level_count, p.lwe_noise,
                                                          Seed::from_os());
    key.bootstrap_key = generate_seeded_lwe_bootstrap_key(client_key.lwe_secret_key, client_key.glwe_secret_key,
                                                          p.pbs_base_log, p.pbs_level_count, p.glwe_noise,
                                                          Seed::from_os(), p.grouping_factor);
    if (p.has_fine_bootstrap())
        key.fine_bootstrap_key = generate_seeded_lwe_bootstrap_key(
            client_key.lwe_secret_key, client_key.glwe_secret_key, p.fine_pbs_base_log, p.fine_pbs_level_count,
            p.glwe_noise, Seed::from_os(), p.grouping_factor);
    return key;
}

ServerKey decompress_server_key(const CompressedServerKey & compressed) {
    ServerKey key;
    key.parameters = compressed.parameters;
    key.keyswitch_key = decompress_seeded_lwe_keyswitch_key(compressed.keyswitch_key);
    key.bootstrap_key = convert_to_fourier_lwe_bootstrap_key(decompress_seeded_lwe_bootstrap_key(compressed.bootstrap_key));
    if (compressed.parameters.has_fine_bootstrap() != compressed.fine_bootstrap_key.has_value())
        fail("server key for {}: {} fine bootstrapping key", compressed.parameters.name,
             compressed.fine_bootstrap_key ? "an unexpected" : "no");
    if (compressed.fine_bootstrap_key)
        key.fine_bootstrap_key =
            convert_to_fourier_lwe_bootstrap_key(decompress_seeded_lwe_bootstrap_key(*compressed.fine_bootstrap_key));
    return key;
}

ServerKey generate_server_key(const ClientKey & client_key) {
    const TfheParameters & p = client_key.parameters;
    ServerKey key;
    key.parameters = p;
    key.keyswitch_key = generate_lwe_keyswitch_key(client_key.big_lwe_secret_key, client_key.lwe_secret_key,
                                                   p.ks_base_log, p.ks_level_count, p.lwe_noise);
    key.bootstrap_key = convert_to_fourier_lwe_bootstrap_key(
        generate_lwe_bootstrap_key(client_key.lwe_secret_key, client_key.glwe_secret_key, p.pbs_base_log,
                                   p.pbs_level_count, p.glwe_noise, p.grouping_factor));
    if (p.has_fine_bootstrap())
        key.fine_bootstrap_key = convert_to_fourier_lwe_bootstrap_key(
            generate_lwe_bootstrap_key(client_key.lwe_secret_key, client_key.glwe_secret_key, p.fine_pbs_base_log,
                                       p.fine_pbs_level_count, p.glwe_noise, p.grouping_factor));
    return key;
}

LweCiphertext encrypt_message(const ClientKey & key, uint64_t message, uint64_t message_modulus,
                              RandomGenerator & secret_generator) {
    return allocate_and_encrypt_new_lwe_ciphertext(key.big_lwe_secret_key, encode_message(message, message_modulus),
                                                   key.parameters.glwe_noise, secret_generator);
}

LweCiphertext encrypt_message(const ClientKey & key, uint64_t message, uint64_t message_modulus) {
    RandomGenerator secret = RandomGenerator::from_os();
    return encrypt_message(key, message, message_modulus, secret);
}

SeededLweCiphertext encrypt_message_seeded(const ClientKey & key, uint64_t message, uint64_t message_modulus,
                                           const Seed & seed, uint64_t stream) {
    RandomGenerator noise = RandomGenerator::from_os();
    return encrypt_seeded_lwe_ciphertext(key.big_lwe_secret_key, encode_message(message, message_modulus),
                                         key.parameters.glwe_noise, seed, stream, noise);
}

uint64_t decrypt_phase(const ClientKey & key, const LweCiphertext & ciphertext) {
    return decrypt_lwe_ciphertext(key.big_lwe_secret_key, ciphertext);
}

uint64_t decrypt_message(const ClientKey & key, const LweCiphertext & ciphertext, uint64_t message_modulus) {
    return decode_message(decrypt_phase(key, ciphertext), message_modulus);
}

LookupTable generate_lookup_table(const ServerKey & key, uint64_t input_modulus, uint64_t output_modulus,
                                  const MessageFunction & f) {
    return generate_lookup_table(key.parameters.polynomial_size, input_modulus, output_modulus, f);
}

const FourierLweBootstrapKey & ServerKey::bootstrap_key_of(BootstrapKeyKind kind) const {
    if (kind == BootstrapKeyKind::standard) return bootstrap_key;
    if (!fine_bootstrap_key) fail("server key for {} has no fine bootstrapping key", parameters.name);
    return *fine_bootstrap_key;
}

BootstrapWorkspace allocate_bootstrap_workspace(const ServerKey & key, ThreadPool & pool, BootstrapKeyKind kind) {
    return allocate_bootstrap_workspace(key.bootstrap_key_of(kind), pool.size());
}

void keyswitch_bootstrap(const ServerKey & key, const LweCiphertext & input, LweCiphertext & output,
                         const LookupTable & lut, BootstrapWorkspace & workspace) {
    FHEGPT_CHECK(!workspace.threads.empty(), "empty bootstrap workspace");
    BootstrapThreadScratch & scratch = workspace.threads[0];
    const LweCiphertext * in[1] = {&input};
    LweCiphertext * small[1] = {&scratch.switched[0]};
    keyswitch_lwe_ciphertext_group(key.keyswitch_key, in, small, scratch.keyswitch);
    programmable_bootstrap_lwe_ciphertext(scratch.switched[0], output, lut, key.bootstrap_key,
                                          key.parameters.modulus_switch, scratch.pbs);
}

namespace {

// The key's accelerator when it holds the bootstrapping key of `kind`, else nullptr (the CPU threads).
BootstrapAccelerator * accelerator_for(const ServerKey & key, BootstrapKeyKind kind) {
    return key.accelerator && key.accelerator->serves(kind) ? key.accelerator.get() : nullptr;
}

} // namespace

void batch_keyswitch_bootstrap(const ServerKey & key, std::span<const LweCiphertext> inputs,
                               std::span<LweCiphertext> outputs, std::span<const LookupTable * const> luts,
                               BootstrapWorkspace & workspace, ThreadPool & pool) {
    if (auto accelerator = accelerator_for(key, BootstrapKeyKind::standard)) {
        std::vector<const LweCiphertext *> in(inputs.size());
        std::vector<LweCiphertext *> out(outputs.size());
        for (size_t i = 0; i < inputs.size(); ++i) in[i] = &inputs[i];
        for (size_t i = 0; i < outputs.size(); ++i) out[i] = &outputs[i];
        return accelerator->batch_keyswitch_bootstrap(BootstrapKeyKind::standard, in, out, luts);
    }
    batch_keyswitch_programmable_bootstrap(inputs, outputs, luts, &key.keyswitch_key, key.bootstrap_key,
                                           key.parameters.modulus_switch, workspace, pool);
}

void batch_keyswitch_bootstrap(const ServerKey & key, std::span<const LweCiphertext * const> inputs,
                               std::span<LweCiphertext * const> outputs, std::span<const LookupTable * const> luts,
                               BootstrapWorkspace & workspace, ThreadPool & pool) {
    if (auto accelerator = accelerator_for(key, BootstrapKeyKind::standard))
        return accelerator->batch_keyswitch_bootstrap(BootstrapKeyKind::standard, inputs, outputs, luts);
    batch_keyswitch_programmable_bootstrap(inputs, outputs, luts, &key.keyswitch_key, key.bootstrap_key,
                                           key.parameters.modulus_switch, workspace, pool);
}

void batch_keyswitch_bootstrap(const ServerKey & key, BootstrapKeyKind kind,
                               std::span<const LweCiphertext * const> inputs, std::span<LweCiphertext * const> outputs,
                               std::span<const LookupTable * const> luts, BootstrapWorkspace & workspace,
                               ThreadPool & pool) {
    if (auto accelerator = accelerator_for(key, kind))
        return accelerator->batch_keyswitch_bootstrap(kind, inputs, outputs, luts);
    batch_keyswitch_programmable_bootstrap(inputs, outputs, luts, &key.keyswitch_key, key.bootstrap_key_of(kind),
                                           key.parameters.modulus_switch, workspace, pool);
}

LweCiphertext allocate_lwe_ciphertext(const ServerKey & key) { return LweCiphertext(key.parameters.big_lwe_dimension()); }

} // namespace fhegpt::tfhe
