// The client/server protocol without a network (net/protocol.h, net/session_table.h): the
// binary messages round-trip, and every malformed message (bad magic, version or type, each
// truncation, trailing bytes, a hostile blob length) is an fhegpt::Error, never a crash; the
// JSON manifest round-trips (with the whole blocks' stream section, whose client-side
// quantization equals the blocks' own) and a malformed or hostile one is rejected; bearer tokens parse;
// the session table hands out distinct 64-hex-digit tokens, enforces its limit and expires idle
// sessions but never one that is running a request.
#include "circuit/quantized_blocks.h"
#include "common/error.h"
#include "net/evaluation_queue.h"
#include "net/protocol.h"
#include "net/session_table.h"
#include "quant/quantizer.h"
#include "tfhe/keyset.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::net;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (uint8_t & b : out) b = static_cast<uint8_t>(rng());
    return out;
}

std::span<const uint8_t> as_bytes(const std::string & s) {
    return {reinterpret_cast<const uint8_t *>(s.data()), s.size()};
}

// Little-endian u64 at `offset` of a message (the blob lengths).
void put_u64(std::string & s, size_t offset, uint64_t v) {
    for (int i = 0; i < 8; ++i) s[offset + size_t(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

KeyUpload sample_key_upload() { return KeyUpload{random_bytes(300, 1)}; }

EvalRequest sample_eval_request() {
    EvalRequest m;
    m.n_past = 7;
    m.n_new = 3;
    m.inputs = random_bytes(200, 2);
    return m;
}

EvalResponse sample_eval_response() {
    EvalResponse m;
    m.first = 5;
    m.n_new = 2;
    m.bootstraps = (uint64_t{1} << 40) + 3;
    m.seconds = 1.0 / 3.0;
    m.outputs = random_bytes(150, 3);
    return m;
}

// One kind of message: a valid encoding, its decoder, and where its blob length sits.
struct Codec {
    const char * name;
    std::string valid;
    std::function<void(std::span<const uint8_t>)> decode;
    size_t blob_length_offset;
};

std::vector<Codec> codecs() {
    return {
        {"KeyUpload", encode(sample_key_upload()), [](auto b) { decode_key_upload(b); }, 8},
        {"EvalRequest", encode(sample_eval_request()), [](auto b) { decode_eval_request(b); }, 16},
        {"EvalResponse", encode(sample_eval_response()), [](auto b) { decode_eval_response(b); }, 32},
    };
}

TEST(NetProtocol, MessagesRoundTrip) {
    const KeyUpload key = sample_key_upload();
    EXPECT_EQ(decode_key_upload(as_bytes(encode(key))).server_key, key.server_key);
    EXPECT_TRUE(decode_key_upload(as_bytes(encode(KeyUpload{}))).server_key.empty());

    for (uint32_t n_past : {0u, 7u, std::numeric_limits<uint32_t>::max()}) {
        EvalRequest request = sample_eval_request();
        request.n_past = n_past;
        request.n_new = n_past ^ 0x5a5a5a5au;
        const EvalRequest back = decode_eval_request(as_bytes(encode(request)));
        EXPECT_EQ(back.n_past, request.n_past);
        EXPECT_EQ(back.n_new, request.n_new);
        EXPECT_EQ(back.inputs, request.inputs);
    }

    for (double seconds : {0.0, 1.0 / 3.0, -2.5, 1e300}) {
        EvalResponse response = sample_eval_response();
        response.seconds = seconds;
        const EvalResponse back = decode_eval_response(as_bytes(encode(response)));
        EXPECT_EQ(back.first, response.first);
        EXPECT_EQ(back.n_new, response.n_new);
        EXPECT_EQ(back.bootstraps, response.bootstraps);
        EXPECT_EQ(back.seconds, response.seconds); // bit for bit
        EXPECT_EQ(back.outputs, response.outputs);
    }
}

TEST(NetProtocol, WireHeader) {
    // "FGMS", u16 version, u16 type, little-endian: what another implementation would read.
    const std::string key = encode(sample_key_upload());
    const std::string request = encode(sample_eval_request());
    const std::string response = encode(sample_eval_response());
    for (const std::string * m : {&key, &request, &response}) {
        ASSERT_GE(m->size(), 8u);
        EXPECT_EQ(m->substr(0, 4), "FGMS");
        EXPECT_EQ(uint8_t((*m)[4]), kProtocolVersion);
        EXPECT_EQ(uint8_t((*m)[5]), 0);
    }
    EXPECT_EQ(key[6], 1);
    EXPECT_EQ(request[6], 2);
    EXPECT_EQ(response[6], 3);
    EXPECT_EQ(key.size(), 8u + 8u + 300u);
    EXPECT_EQ(request.size(), 8u + 8u + 8u + 200u);
    EXPECT_EQ(response.size(), 8u + 24u + 8u + 150u);
    // n_past and n_new right after the header.
    EXPECT_EQ(uint8_t(request[8]), 7);
    EXPECT_EQ(uint8_t(request[12]), 3);
}

TEST(NetProtocol, BadHeadersAreErrors) {
    for (const Codec & c : codecs()) {
        std::string bad = c.valid;
        bad[0] = 'X';
        EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": bad magic";
        for (uint8_t version : {uint8_t(0), uint8_t(kProtocolVersion + 1), uint8_t(255)}) {
            bad = c.valid;
            bad[4] = static_cast<char>(version);
            EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": version " << int(version);
        }
        bad = c.valid;
        bad[5] = 1; // version 257
        EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": version high byte";
        for (uint8_t type : {uint8_t(0), uint8_t(4), uint8_t(255)}) {
            bad = c.valid;
            bad[6] = static_cast<char>(type);
            EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": type " << int(type);
        }
        bad = c.valid;
        bad[7] = 1;
        EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": type high byte";
    }
    // Each message decoded as another kind.
    const std::vector<Codec> all = codecs();
    for (const Codec & message : all)
        for (const Codec & decoder : all)
            if (&message != &decoder) {
                EXPECT_THROW(decoder.decode(as_bytes(message.valid)), Error)
                    << message.name << " decoded as " << decoder.name;
            }
    // The error names the problem.
    try {
        decode_eval_request(as_bytes(encode(sample_key_upload())));
        ADD_FAILURE() << "no error";
    } catch (const Error & e) {
        EXPECT_NE(std::string(e.what()).find("message type"), std::string::npos) << e.what();
    }
}

TEST(NetProtocol, EveryTruncationIsAnError) {
    for (const Codec & c : codecs()) {
        EXPECT_NO_THROW(c.decode(as_bytes(c.valid))) << c.name;
        for (size_t n = 0; n < c.valid.size(); ++n)
            EXPECT_THROW(c.decode(as_bytes(c.valid.substr(0, n))), Error) << c.name << " truncated to " << n;
    }
}

TEST(NetProtocol, TrailingBytesAreAnError) {
    for (const Codec & c : codecs()) {
        EXPECT_THROW(c.decode(as_bytes(c.valid + std::string(1, '\0'))), Error) << c.name;
        EXPECT_THROW(c.decode(as_bytes(c.valid + c.valid)), Error) << c.name;
    }
}

TEST(NetProtocol, HostileBlobLengthsAreErrors) {
    // Lengths past the end, up to 2^64 - 1: an error before any allocation (no bad_alloc, no
    // length_error, no read out of bounds).
    for (const Codec & c : codecs()) {
        const uint64_t actual = c.valid.size() - c.blob_length_offset - 8;
        std::string same = c.valid;
        put_u64(same, c.blob_length_offset, actual);
        EXPECT_NO_THROW(c.decode(as_bytes(same))) << c.name << ": the offset is the blob length's";
        for (uint64_t length : {actual + 1, actual + 4096, uint64_t{1} << 40, uint64_t{1} << 62,
                                std::numeric_limits<uint64_t>::max() - 7, std::numeric_limits<uint64_t>::max()}) {
            std::string bad = c.valid;
            put_u64(bad, c.blob_length_offset, length);
            EXPECT_THROW(c.decode(as_bytes(bad)), Error) << c.name << ": blob length " << length;
        }
        // A shorter length leaves trailing bytes.
        std::string shorter = c.valid;
        put_u64(shorter, c.blob_length_offset, actual - 1);
        EXPECT_THROW(c.decode(as_bytes(shorter)), Error) << c.name << ": blob length " << actual - 1;
    }
}

TEST(NetProtocol, RandomBytesNeverCrash) {
    // Random mutations of valid messages: each decodes or fails with Error.
    std::mt19937 rng(42);
    for (const Codec & c : codecs()) {
        for (int trial = 0; trial < 2000; ++trial) {
            std::string m = c.valid;
            const int flips = 1 + int(rng() % 4);
            for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng());
            try {
                c.decode(as_bytes(m));
            } catch (const Error &) {
            }
        }
    }
}

PartManifest sample_manifest() {
    PartManifest m;
    m.part = "layer0.head0";
    m.n_bits = 4;
    m.parameter_set = "INSECURE_TEST_4BIT_PBS_L2";
    m.n_embd = 4;
    m.output_cols = 2;
    m.x_bits = 8;
    m.x_scales = {0.1, 0.2, 1.0 / 3.0, 0.0123456789012345678};
    m.input_delta_log2 = 56;
    m.output_delta_log2 = 52;
    m.output_unit = 0.0009765625 / 3.0;
    m.max_positions = 64;
    m.max_request_bytes = (uint64_t{1} << 33) + 5;
    m.max_sessions = 4;
    m.idle_timeout_seconds = 600.25;
    m.server_key_bytes = 4321987;
    return m;
}

TEST(NetManifest, JsonRoundTrip) {
    const PartManifest m = sample_manifest();
    const PartManifest back = PartManifest::from_json(m.to_json());
    EXPECT_EQ(back.protocol, kProtocolVersion);
    EXPECT_EQ(back.part, m.part);
    EXPECT_EQ(back.n_bits, m.n_bits);
    EXPECT_EQ(back.parameter_set, m.parameter_set);
    EXPECT_EQ(back.n_embd, m.n_embd);
    EXPECT_EQ(back.output_cols, m.output_cols);
    EXPECT_EQ(back.x_bits, m.x_bits);
    EXPECT_EQ(back.x_scales, m.x_scales); // doubles bit for bit: the client quantizes with them
    EXPECT_EQ(back.input_delta_log2, m.input_delta_log2);
    EXPECT_EQ(back.output_delta_log2, m.output_delta_log2);
    EXPECT_EQ(back.output_unit, m.output_unit);
    EXPECT_EQ(back.max_positions, m.max_positions);
    EXPECT_EQ(back.max_request_bytes, m.max_request_bytes);
    EXPECT_EQ(back.max_sessions, m.max_sessions);
    EXPECT_EQ(back.idle_timeout_seconds, m.idle_timeout_seconds);
    EXPECT_EQ(back.server_key_bytes, m.server_key_bytes);
    EXPECT_EQ(back.parameters().name, "INSECURE_TEST_4BIT_PBS_L2");
    EXPECT_EQ(back.to_json(), m.to_json());
}

TEST(NetManifest, QuantizeInputs) {
    const PartManifest m = sample_manifest();
    const std::vector<float> x = {0.5f, -0.3f, 100.0f, 0.01f, -1.0f, 0.0f, 0.2f, -100.0f};
    const std::vector<int64_t> q = m.quantize_inputs(x);
    ASSERT_EQ(q.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i)
        EXPECT_EQ(q[i], quant::quantize_value(x[i], m.x_scales[i % 4], m.x_bits)) << i;
    EXPECT_EQ(q[2], quant::max_level(8));  // clamped
    EXPECT_EQ(q[7], -quant::max_level(8));
    EXPECT_THROW(m.quantize_inputs(std::span(x).first(3)), Error);
}

std::string mutated(const std::function<void(nlohmann::json &)> & change) {
    nlohmann::json j = nlohmann::json::parse(sample_manifest().to_json());
    change(j);
    return j.dump();
}

void expect_rejected(const std::string & text, const std::string & what, const std::string & message_part = {}) {
    try {
        PartManifest::from_json(text);
        ADD_FAILURE() << what << ": accepted " << text;
    } catch (const Error & e) {
        if (!message_part.empty()) {
            EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << what << ": " << e.what();
        }
    } catch (const std::exception & e) {
        ADD_FAILURE() << what << ": not an fhegpt::Error: " << e.what();
    }
}

TEST(NetManifest, RejectsMalformedText) {
    for (const char * text : {"", "not json", "{", "[1, 2]", "42", "null", "\"manifest\"", "{}", "{\"protocol\": 1"})
        expect_rejected(text, std::string("text '") + text + "'");
    EXPECT_NO_THROW(PartManifest::from_json(sample_manifest().to_json()));
}

TEST(NetManifest, RejectsMissingFields) {
    const nlohmann::json j = nlohmann::json::parse(sample_manifest().to_json());
    ASSERT_EQ(j.size(), 16u);
    for (const auto & [key, value] : j.items())
        expect_rejected(mutated([&](nlohmann::json & m) { m.erase(key); }), "without " + key, key);
}

TEST(NetManifest, RejectsWrongTypes) {
    struct Case {
        const char * field;
        nlohmann::json value;
    };
    const std::vector<Case> cases = {
        {"protocol", "1"},
        {"protocol", 1.5},
        {"part", 5},
        {"n_bits", "4"},
        {"parameter_set", nlohmann::json::array()},
        {"n_embd", "4"},
        {"n_embd", 4.5},
        {"n_embd", nullptr},
        {"output_cols", true},
        {"x_bits", nlohmann::json::object()},
        {"x_scales", "0.1"},
        {"x_scales", 0.1},
        {"x_scales", nlohmann::json::array({0.1, "0.2", 0.3, 0.4})},
        {"x_scales", nlohmann::json::array({0.1, nullptr, 0.3, 0.4})}, // what a NaN becomes in JSON
        {"input_delta_log2", "56"},
        {"output_unit", "0.1"},
        {"max_positions", 64.5},
        {"max_request_bytes", "1000"},
        {"max_request_bytes", -1},
        {"max_sessions", nlohmann::json::array()},
        {"idle_timeout_seconds", "600"},
        {"server_key_bytes", -5},
    };
    for (const Case & c : cases)
        expect_rejected(mutated([&](nlohmann::json & m) { m[c.field] = c.value; }),
                        std::string(c.field) + " = " + c.value.dump(), c.field);
}

TEST(NetManifest, RejectsOutOfRangeValues) {
    struct Case {
        const char * field;
        nlohmann::json value;
    };
    const std::vector<Case> cases = {
        {"n_embd", 0},
        {"n_embd", -4},
        {"n_embd", 1 << 17},
        {"n_embd", int64_t{1} << 32 | 4}, // 4 after a cast to 32 bits
        {"n_embd", 1e30},                 // a float cast to an integer would be undefined
        {"output_cols", 0},
        {"output_cols", -1},
        {"x_bits", 1},
        {"x_bits", 17},
        {"input_delta_log2", 0},
        {"input_delta_log2", 64},
        {"input_delta_log2", -1},
        {"output_delta_log2", 0},
        {"output_delta_log2", 64},
        {"output_unit", 0},
        {"output_unit", -0.5},
        {"max_positions", 0},
        {"max_positions", -3},
        {"max_positions", (1 << 20) + 1},
        {"max_positions", int64_t{1} << 32 | 8},
    };
    for (const Case & c : cases)
        expect_rejected(mutated([&](nlohmann::json & m) { m[c.field] = c.value; }),
                        std::string(c.field) + " = " + c.value.dump());
}

TEST(NetManifest, RejectsBadScales) {
    for (size_t n : {size_t(0), size_t(3), size_t(5)})
        expect_rejected(mutated([&](nlohmann::json & m) { m["x_scales"] = std::vector<double>(n, 0.1); }),
                        std::to_string(n) + " scales for 4 inputs");
    for (double bad : {0.0, -0.1, -1e300, std::numeric_limits<double>::infinity() /* null in JSON */})
        expect_rejected(mutated([&](nlohmann::json & m) { m["x_scales"][2] = bad; }), "a scale of " + std::to_string(bad));
    // Integers are numbers too.
    EXPECT_NO_THROW(PartManifest::from_json(mutated([](nlohmann::json & m) { m["x_scales"][1] = 2; })));
}

TEST(NetManifest, RejectsUnknownParameterSetAndProtocol) {
    expect_rejected(mutated([](nlohmann::json & m) { m["parameter_set"] = "NO_SUCH_SET"; }), "unknown set", "NO_SUCH_SET");
    expect_rejected(mutated([](nlohmann::json & m) { m["parameter_set"] = ""; }), "empty set");
    for (int version : {0, kProtocolVersion + 1, -1})
        expect_rejected(mutated([&](nlohmann::json & m) { m["protocol"] = version; }),
                        "protocol " + std::to_string(version), "protocol version");
}

// A run of whole blocks: the client's share of the first stage travels in "stream".
PartManifest sample_blocks_manifest() {
    PartManifest m = sample_manifest();
    m.part = "all";
    m.output_cols = m.n_embd;
    StreamManifest st;
    st.width = 20;
    st.units = {0.01, 0.02, 1.0 / 7.0, 0.005};
    st.eps = 1e-5f;
    st.stream_delta_log2 = 43;
    st.output_units = {0.1, 0.3, 1.0 / 9.0, 0.25};
    m.stream = st;
    return m;
}

TEST(NetManifest, BlocksRoundTripAndClientShare) {
    const PartManifest m = sample_blocks_manifest();
    const PartManifest back = PartManifest::from_json(m.to_json());
    ASSERT_TRUE(back.stream.has_value());
    EXPECT_FALSE(PartManifest::from_json(sample_manifest().to_json()).stream.has_value());
    EXPECT_EQ(back.stream->width, 20);
    EXPECT_EQ(back.stream->units, m.stream->units);
    EXPECT_EQ(back.stream->eps, m.stream->eps);
    EXPECT_EQ(back.stream->output_units, m.stream->output_units);
    EXPECT_EQ(back.to_json(), m.to_json());
    // Two ciphertexts per channel: the stream at its scale, then its normalization.
    EXPECT_EQ(back.input_cols(), 8);
    EXPECT_EQ(back.input_delta_log2_of(3), 43);
    EXPECT_EQ(back.input_delta_log2_of(4), m.input_delta_log2);
    EXPECT_EQ(back.output_unit_of(2), 1.0 / 9.0);
    EXPECT_EQ(sample_manifest().input_cols(), 4);
    EXPECT_EQ(sample_manifest().output_unit_of(1), sample_manifest().output_unit);
    const std::vector<float> x = {0.5f, -0.3f, 1.0f, 0.01f, -1.0f, 0.0f, 0.2f, -10.0f};
    circuit::ResidualEncoding residual;
    residual.width = 20;
    residual.unit = m.stream->units;
    const std::vector<int64_t> q = back.quantize_inputs(x);
    EXPECT_EQ(q, circuit::quantize_block_inputs(residual, float(m.stream->eps), m.x_scales, m.x_bits, x));
    ASSERT_EQ(q.size(), 16u);
    EXPECT_EQ(std::vector<int64_t>(q.begin(), q.begin() + 4), std::vector<int64_t>(residual.quantize(std::span(x).first(4))));
    EXPECT_THROW(back.quantize_inputs(std::span(x).first(3)), Error);

    auto blocks_mutated = [](const std::function<void(nlohmann::json &)> & change) {
        nlohmann::json j = nlohmann::json::parse(sample_blocks_manifest().to_json());
        change(j);
        return j.dump();
    };
    for (const char * key : {"width", "units", "eps", "stream_delta_log2", "output_units"})
        expect_rejected(blocks_mutated([&](nlohmann::json & j) { j["stream"].erase(key); }), std::string("without ") + key,
                        key);
    const std::vector<std::pair<const char *, std::function<void(nlohmann::json &)>>> bad = {
        {"stream not an object", [](nlohmann::json & j) { j["stream"] = 3; }},
        {"width 1", [](nlohmann::json & j) { j["stream"]["width"] = 1; }},
        {"width 63", [](nlohmann::json & j) { j["stream"]["width"] = 63; }},
        {"3 units", [](nlohmann::json & j) { j["stream"]["units"].erase(0); }},
        {"a negative unit", [](nlohmann::json & j) { j["stream"]["units"][1] = -0.5; }},
        {"a zero output unit", [](nlohmann::json & j) { j["stream"]["output_units"][3] = 0; }},
        {"5 output units", [](nlohmann::json & j) { j["stream"]["output_units"].push_back(1.0); }},
        {"eps 0", [](nlohmann::json & j) { j["stream"]["eps"] = 0; }},
        {"stream encoding 2^64", [](nlohmann::json & j) { j["stream"]["stream_delta_log2"] = 64; }},
        {"2 outputs", [](nlohmann::json & j) { j["output_cols"] = 2; }},
    };
    for (const auto & [what, change] : bad) expect_rejected(blocks_mutated(change), what);
}

TEST(NetProtocol, BearerToken) {
    EXPECT_EQ(bearer_token("Bearer abc123"), "abc123");
    EXPECT_EQ(bearer_token("Bearer " + std::string(64, 'f')), std::string(64, 'f'));
    EXPECT_EQ(bearer_token(""), "");
    EXPECT_EQ(bearer_token("Bearer"), "");
    EXPECT_EQ(bearer_token("Bearer "), "");
    EXPECT_EQ(bearer_token("Bearerabc"), "");
    EXPECT_EQ(bearer_token("Basic abc"), "");
    EXPECT_EQ(bearer_token("abc"), "");
    EXPECT_EQ(bearer_token(" Bearer abc"), "");
}

// Evaluation keys for the sessions (the cheapest set); each Session gets a copy.
const tfhe::ServerKey & test_server_key() {
    static const tfhe::ServerKey key =
        tfhe::generate_server_key(tfhe::generate_client_key(tfhe::parameters_by_name("INSECURE_TEST_4BIT_PBS_L2")));
    return key;
}

std::shared_ptr<Session> new_session(SessionTable & table) {
    SessionSlot slot = table.reserve_slot();
    if (!slot) throw std::runtime_error("no slot");
    return std::make_shared<Session>(std::move(slot), test_server_key());
}

bool is_hex_token(const std::string & token) {
    if (token.size() != 64) return false;
    for (char c : token)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

TEST(NetSessionTable, AddFindRemove) {
    SessionTable table(4, 60);
    EXPECT_EQ(table.size(), 0u);
    auto a = new_session(table), b = new_session(table);
    const std::string ta = table.add(a), tb = table.add(b);
    EXPECT_TRUE(is_hex_token(ta)) << ta;
    EXPECT_TRUE(is_hex_token(tb)) << tb;
    EXPECT_NE(ta, tb);
    EXPECT_EQ(table.size(), 2u);
    EXPECT_EQ(table.find(ta), a);
    EXPECT_EQ(table.find(tb), b);
    EXPECT_EQ(table.find(""), nullptr);
    EXPECT_EQ(table.find(std::string(64, '0')), nullptr);
    EXPECT_EQ(table.find(ta.substr(0, 63)), nullptr);
    EXPECT_EQ(table.find(ta + "0"), nullptr);
    EXPECT_EQ(table.remove(ta), a);
    EXPECT_EQ(table.remove(ta), nullptr);
    EXPECT_EQ(table.find(ta), nullptr);
    EXPECT_EQ(table.find(tb), b);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.remove("no such token"), nullptr);
    // Log names: short and not a prefix of the secret.
    const std::string name = SessionTable::log_name(tb);
    EXPECT_EQ(name.size(), 8u);
    EXPECT_EQ(name, SessionTable::log_name(tb));
    EXPECT_NE(name, tb.substr(0, 8));
    EXPECT_NE(name, SessionTable::log_name(ta));
}

TEST(NetSessionTable, TokensAreDistinct) {
    SessionTable table(2, 60);
    const auto session = new_session(table);
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        const std::string token = table.add(session);
        ASSERT_TRUE(is_hex_token(token)) << token;
        EXPECT_TRUE(seen.insert(token).second) << "token repeated: " << token;
        EXPECT_EQ(table.remove(token), session);
    }
}

TEST(NetSessionTable, TokensCarryTheInstancePrefix) {
    SessionTable table(2, 60, "fhegpt-a");
    auto s = new_session(table);
    const std::string token = table.add(s);
    ASSERT_EQ(token.rfind("fhegpt-a.", 0), 0u) << token; // what the load balancer routes on
    EXPECT_EQ(token.size(), std::string("fhegpt-a.").size() + 64);
    EXPECT_EQ(table.find(token), s);
    // The prefix alone, or the random part alone, names no session.
    EXPECT_EQ(table.find("fhegpt-a."), nullptr);
    EXPECT_EQ(table.find(token.substr(9)), nullptr);
    EXPECT_EQ(table.find("fhegpt-b." + token.substr(9)), nullptr);

    SessionTable plain(1, 60);
    const std::string plain_token = plain.add(new_session(plain));
    EXPECT_EQ(plain_token.size(), 64u);
    EXPECT_EQ(plain_token.find('.'), std::string::npos);

    EXPECT_THROW(SessionTable(1, 60, "a b"), Error);
    EXPECT_THROW(SessionTable(1, 60, "a.b"), Error);
    EXPECT_THROW(SessionTable(1, 60, "a\r\nX-Injected: 1"), Error);
    EXPECT_THROW(SessionTable(1, 60, std::string(33, 'a')), Error);
}

TEST(NetSessionTable, SlotsComeBackWhenTheMemoryIsFreed) {
    SessionTable table(2, 60);
    auto a = new_session(table);
    const std::string ta = table.add(a);
    SessionSlot upload = table.reserve_slot(); // a key upload under way holds one too
    EXPECT_TRUE(upload);
    EXPECT_EQ(table.slots_in_use(), 2);
    EXPECT_FALSE(table.reserve_slot());
    // Out of the table, but still in use (an evaluation holds it): the slot stays taken.
    EXPECT_EQ(table.remove(ta), a);
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.slots_in_use(), 2);
    EXPECT_FALSE(table.reserve_slot());
    a.reset(); // its memory freed
    EXPECT_EQ(table.slots_in_use(), 1);
    SessionSlot again = table.reserve_slot();
    EXPECT_TRUE(again);
    upload = SessionSlot(); // an upload that failed
    again = SessionSlot();
    EXPECT_EQ(table.slots_in_use(), 0);
    // A slot outlives its table without harm.
    SessionSlot late;
    {
        SessionTable gone(1, 60);
        late = gone.reserve_slot();
        EXPECT_TRUE(late);
    }
    late = SessionSlot();

    EXPECT_THROW(SessionTable(0, 60), Error);
    EXPECT_THROW(SessionTable(-1, 60), Error);
    EXPECT_THROW(SessionTable(1, 0), Error);
    EXPECT_THROW(SessionTable(1, -5), Error);
    EXPECT_THROW(SessionTable(1, std::nan("")), Error);
}

TEST(NetSessionTable, OneRequestAtATimeAndCloseCancelsIt) {
    SessionTable table(1, 60);
    auto s = new_session(table);
    const auto first = s->begin_request();
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(s->begin_request(), nullptr); // busy
    EXPECT_FALSE(s->close_if_idle());
    s->end_request();
    const auto second = s->begin_request();
    ASSERT_NE(second, nullptr);
    EXPECT_FALSE(second->cancelled());
    EXPECT_TRUE(s->close(kSessionClosed));
    EXPECT_EQ(second->reason(), kSessionClosed);
    EXPECT_FALSE(first->cancelled()); // an ended request is not touched
    s->end_request();
    EXPECT_EQ(s->begin_request(), nullptr); // closed for good
    EXPECT_TRUE(s->closed());
    EXPECT_FALSE(s->close(kServerStopping)); // nothing running
}

TEST(NetSessionTable, ExpireIdle) {
    using Clock = SessionTable::Clock;
    SessionTable table(4, 60);
    auto idle = new_session(table), busy = new_session(table), used = new_session(table);
    const std::string t_idle = table.add(idle), t_busy = table.add(busy), t_used = table.add(used);
    // Nothing is idle yet.
    EXPECT_EQ(table.expire_idle(Clock::now()), 0u);
    EXPECT_EQ(table.size(), 3u);

    // `busy` runs a request while the sweeper looks.
    ASSERT_NE(busy->begin_request(), nullptr);
    const Clock::time_point later = Clock::now() + std::chrono::hours(1);
    // `used` was used just now, but an hour later it is idle too.
    EXPECT_NE(table.find(t_used), nullptr);
    EXPECT_EQ(table.expire_idle(later), 2u);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.find(t_idle), nullptr);
    EXPECT_EQ(table.find(t_used), nullptr);
    EXPECT_EQ(table.find(t_busy), busy);
    EXPECT_TRUE(idle->closed());
    EXPECT_FALSE(busy->closed());
    busy->end_request();

    // Once its request is done, it can expire (find just marked it used: later still passes).
    EXPECT_EQ(table.expire_idle(Clock::now()), 0u);
    EXPECT_EQ(table.expire_idle(later), 1u);
    EXPECT_EQ(table.size(), 0u);
    // The table let go of it: only this test holds it.
    EXPECT_EQ(busy.use_count(), 1);
    EXPECT_EQ(table.slots_in_use(), 3);
    idle.reset();
    busy.reset();
    used.reset();
    EXPECT_EQ(table.slots_in_use(), 0);
}

TEST(NetEvaluationQueue, AtMostLimitRunAndCancelledWaitersLeave) {
    EvaluationQueue queue(1);
    CancellationToken never;
    std::optional<EvaluationQueue::Turn> first(queue.wait_turn(never));
    EXPECT_EQ(queue.running(), 1);
    // A second waits; cancelled, it leaves the queue with Cancelled.
    CancellationToken second_cancel;
    std::promise<int> second_result;
    std::thread second([&] {
        try {
            const EvaluationQueue::Turn t = queue.wait_turn(second_cancel);
            second_result.set_value(0);
        } catch (const Cancelled & c) {
            second_result.set_value(c.reason);
        }
    });
    // A third waits behind it and gets the turn once the first is done.
    std::promise<void> third_ran;
    std::thread third([&] {
        const EvaluationQueue::Turn t = queue.wait_turn(never);
        third_ran.set_value();
    });
    while (queue.waiting() < 2) std::this_thread::yield();
    second_cancel.cancel(kClientGone);
    queue.wake();
    EXPECT_EQ(second_result.get_future().get(), kClientGone);
    second.join();
    EXPECT_EQ(queue.waiting(), 1);
    EXPECT_EQ(queue.running(), 1);
    first.reset();
    third_ran.get_future().wait();
    third.join();
    EXPECT_EQ(queue.running(), 0);
    EXPECT_EQ(queue.waiting(), 0);
    EXPECT_THROW(EvaluationQueue(0), Error);
}

} // namespace
