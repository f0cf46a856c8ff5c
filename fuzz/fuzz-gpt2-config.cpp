// libFuzzer target: parse_gpt2_config on arbitrary text. Only fhegpt::Error may leave it; an
// accepted config must pass check_gpt2_hparams and survive a write/read round trip unchanged.
#include "common/error.h"
#include "model/gpt2_config.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    fhegpt::model::Gpt2HParams hp;
    try {
        hp = fhegpt::model::parse_gpt2_config(text, "<fuzz>");
    } catch (const fhegpt::Error &) {
        return 0;
    }
    fhegpt::model::check_gpt2_hparams(hp, "<fuzz>"); // throws (and so fails the run) if inconsistent
    fhegpt::model::Gpt2HParams back =
        fhegpt::model::parse_gpt2_config(fhegpt::model::gpt2_config_json(hp), "<round trip>");
    require(back.n_vocab == hp.n_vocab && back.n_ctx == hp.n_ctx && back.n_embd == hp.n_embd &&
            back.n_head == hp.n_head && back.n_layer == hp.n_layer);
    require(back.layer_norm_epsilon == hp.layer_norm_epsilon);
    require(back.activation_function == hp.activation_function && back.tie_word_embeddings == hp.tie_word_embeddings);
    return 0;
}
