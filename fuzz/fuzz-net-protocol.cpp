// libFuzzer target: the client/server protocol's decoders (net/protocol.h) on arbitrary bytes.
//
// Input: a selector byte (which decoder: key upload, eval request, eval response, server
// manifest JSON, bearer token), then the message. Only fhegpt::Error may leave a decoder; any
// other exception, a crash or a sanitizer report is a bug. An accepted binary message must
// encode back to the same bytes (the format is canonical), and an accepted manifest must
// survive a JSON round trip.
#include "common/error.h"
#include "net/protocol.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) __builtin_trap();
}

bool same(const std::string & encoded, std::span<const uint8_t> bytes) {
    return encoded.size() == bytes.size() && std::equal(bytes.begin(), bytes.end(), encoded.begin(),
                                                        [](uint8_t a, char b) { return a == uint8_t(b); });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    using namespace fhegpt::net;
    if (size == 0) return 0;
    const std::span<const uint8_t> bytes(data + 1, size - 1);
    const std::string_view text(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    try {
        switch (data[0] % 5) {
        case 0: require(same(encode(decode_key_upload(bytes)), bytes)); break;
        case 1: require(same(encode(decode_eval_request(bytes)), bytes)); break;
        case 2: require(same(encode(decode_eval_response(bytes)), bytes)); break;
        case 3: {
            const PartManifest m = PartManifest::from_json(text);
            const PartManifest again = PartManifest::from_json(m.to_json());
            require(again.to_json() == m.to_json());
            break;
        }
        default: {
            const std::string token = bearer_token(text);
            require(token.empty() || text == "Bearer " + token);
        }
        }
    } catch (const fhegpt::Error &) {
    }
    return 0;
}
