// Umbrella header of the TFHE engine: everything a circuit executor uses.
//
// Typical use (KS-PBS order, all ciphertexts under the big key between bootstraps):
//   const TfheParameters & params = default_parameters(4);        // or parameters_by_name(...)
//   ClientKey client = generate_client_key(params);                 // secret, client side
//   CompressedServerKey upload = generate_compressed_server_key(client);
//   ServerKey server = decompress_server_key(upload);               // server side
//   LweCiphertext x = encrypt_message(client, m, p);                // m in Z_p, p <= 2^message_bits
//   lwe_ciphertext_dot_product(y, inputs, weights);                 // leveled, no bootstrap
//   lwe_ciphertext_plaintext_add_assign(y, encode_message(c, p));
//   LookupTable lut = generate_lookup_table(server, p, q, f);       // f: Z_p -> Z_q
//   BootstrapWorkspace ws = allocate_bootstrap_workspace(server);   // once
//   batch_keyswitch_bootstrap(server, inputs, outputs, {&lut}, ws); // all cores
//   uint64_t r = decrypt_message(client, outputs[0], q);
// Many-LUT: generate_many_lookup_table(params, p, q, functions) and F outputs per input.
// Noise: bootstrap_noise_budget(params) (commons/noise_model.h).
#pragma once

#include "tfhe/algorithms/glwe_encryption.h"
#include "tfhe/algorithms/glwe_sample_extraction.h"
#include "tfhe/algorithms/lookup_table_generation.h"
#include "tfhe/algorithms/lwe_batch_bootstrap.h"
#include "tfhe/algorithms/lwe_bootstrap_key_generation.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/algorithms/lwe_keyswitch.h"
#include "tfhe/algorithms/lwe_linear_algebra.h"
#include "tfhe/algorithms/lwe_multi_bit_programmable_bootstrap.h"
#include "tfhe/algorithms/lwe_programmable_bootstrap.h"
#include "tfhe/algorithms/secret_key_generation.h"
#include "tfhe/commons/noise_model.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/commons/torus.h"
#include "tfhe/keyset.h"
