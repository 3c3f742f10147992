// DKIM signing against published and generated vectors (test/data/dkim, copied from
// ../shared/corpora/dkim with its provenance): canonicalization cases from dkimpy, the
// RFC 8463 example, and dkimpy-generated signatures whose b= must come out byte for byte.
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "core/smtp/headers.h"
#include "core/util/base64.h"
#include "core/util/file.h"
#include "core/util/strings.h"
#include "plugins/dkim/canon.h"
#include "plugins/dkim/dkim_key.h"
#include "plugins/dkim/signer.h"

using namespace kasi;
using namespace kasi::dkim;

namespace {

const std::string kData = std::string(KASI_SOURCE_ROOT) + "/test/data/dkim/";

// A file as wire-form bytes: some corpus files have bare LF line ends.
std::string slurp(const std::string& path) {
    std::string s;
    REQUIRE(read_whole_file(path, s));
    if (s.find('\r') != std::string::npos) return s;
    std::string crlf;
    for (char c : s) {
        if (c == '\n') crlf.push_back('\r');
        crlf.push_back(c);
    }
    return crlf;
}

// Just enough JSON for canonicalization.jsonl: objects, arrays and strings.
struct Json {
    std::string str;
    std::vector<Json> arr;
    std::map<std::string, Json> obj;
};

struct JsonParser {
    std::string_view s;
    size_t i = 0;
    void ws() {
        while (i < s.size() && isspace((unsigned char)s[i])) ++i;
    }
    std::string string() {
        std::string out;
        ++i;  // "
        while (s[i] != '"') {
            if (s[i] != '\\') {
                out.push_back(s[i++]);
                continue;
            }
            char e = s[++i];
            ++i;
            switch (e) {
                case 'r':
                    out.push_back('\r');
                    break;
                case 'n':
                    out.push_back('\n');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                case 'u': {
                    unsigned v = std::stoul(std::string(s.substr(i, 4)), nullptr, 16);
                    REQUIRE(v < 0x80);
                    out.push_back(char(v));
                    i += 4;
                    break;
                }
                default:
                    out.push_back(e);
            }
        }
        ++i;
        return out;
    }
    Json value() {
        ws();
        Json j;
        if (s[i] == '"') {
            j.str = string();
        } else if (s[i] == '[') {
            ++i;
            for (ws(); s[i] != ']'; ws()) {
                j.arr.push_back(value());
                ws();
                if (s[i] == ',') ++i;
            }
            ++i;
        } else if (s[i] == '{') {
            ++i;
            for (ws(); s[i] != '}'; ws()) {
                std::string k = string();
                ws();
                ++i;  // :
                j.obj[k] = value();
                ws();
                if (s[i] == ',') ++i;
            }
            ++i;
        }
        return j;
    }
};

class StringSink : public BodySink {
  public:
    void put(std::string_view b) override { s.append(b); }
    std::string s;
};

std::vector<std::string> split_crlf(std::string_view s) {
    std::vector<std::string> out;
    for (size_t pos = 0; pos < s.size();) {
        size_t e = s.find("\r\n", pos);
        if (e == std::string_view::npos) e = s.size();
        out.emplace_back(s.substr(pos, e - pos));
        pos = e + 2;
    }
    return out;
}

std::vector<std::string> split_tsv(const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, '\t')) out.push_back(f);
    if (!line.empty() && line.back() == '\t') out.push_back("");
    return out;
}

// The n-th DKIM-Signature field of a message, as it appears (with its CRLF).
std::string nth_signature(std::string_view m, int n) {
    std::string out;
    int seen = 0;
    for_each_header_field(m, [&](std::string_view name, size_t s, size_t e) {
        if (iequals(name, "DKIM-Signature") && seen++ == n) out = std::string(m.substr(s, e - s));
    });
    return out;
}

std::string tag(const std::vector<std::pair<std::string, std::string>>& tags, const char* name) {
    for (const auto& [k, v] : tags)
        if (k == name) return v;
    return "";
}

std::shared_ptr<const PrivateKey> corpus_key(const std::string& selector) {
    std::string err;
    auto k = PrivateKey::from_text(
        slurp(kData + (selector == "test" ? "keys/rfc8463-test-rsa1024.private.pem"
                                          : "keys/rfc8463-brisbane-ed25519.seed.b64")),
        err);
    INFO(err);
    REQUIRE(k);
    return k;
}

// Reproduces signature `index` of `file`: bh= from our body canonicalization, b= from our
// header canonicalization and signing.
void reproduce(const std::string& file, int index) {
    std::string m = slurp(file);
    std::string field = nth_signature(m, index);
    REQUIRE(!field.empty());
    auto tags = parse_tags(std::string_view(field).substr(field.find(':') + 1));
    Canon hc, bc;
    REQUIRE(parse_canon(tag(tags, "c").empty() ? "simple/simple" : tag(tags, "c"), hc, bc));
    std::string l = tag(tags, "l");
    CHECK(body_hash(m, bc, l.empty() ? -1 : std::stoll(l)) == tag(tags, "bh"));
    std::vector<std::string> h;
    for (const auto& n : split_list(tag(tags, "h"), ":")) h.push_back(n);
    std::string sig_field = strip_b_value(field);
    REQUIRE(sig_field.ends_with("\r\n"));
    sig_field.resize(sig_field.size() - 2);
    auto key = corpus_key(tag(tags, "s"));
    CHECK(key->algorithm() == tag(tags, "a"));
    auto sig = key->sign(header_hash_input(m, hc, h, sig_field));
    REQUIRE(sig);
    CHECK(base64_encode(*sig) == tag(tags, "b"));
}

// Verifies a field we made, independently of the signer's own formatting code paths:
// parse it back, rebuild the signed data, check with OpenSSL's verify.
bool self_verify(const std::string& signed_msg, const PrivateKey& key) {
    std::string field = nth_signature(signed_msg, 0);
    auto tags = parse_tags(std::string_view(field).substr(field.find(':') + 1));
    Canon hc, bc;
    if (!parse_canon(tag(tags, "c"), hc, bc)) return false;
    if (body_hash(signed_msg, bc) != tag(tags, "bh")) return false;
    std::vector<std::string> h = split_list(tag(tags, "h"), ":");
    std::string sig_field = strip_b_value(field);
    sig_field.resize(sig_field.size() - 2);
    std::string data = header_hash_input(signed_msg, hc, h, sig_field);
    auto sig = base64_decode(tag(tags, "b"));
    if (!sig) return false;
    // Public key from the DNS record we would publish.
    std::string rec = key.dns_record();
    auto p = base64_decode(rec.substr(rec.find("p=") + 2));
    if (!p) return false;
    EVP_PKEY* pub = nullptr;
    if (key.type() == KeyType::rsa) {
        const unsigned char* q = reinterpret_cast<const unsigned char*>(p->data());
        pub = d2i_PUBKEY(nullptr, &q, long(p->size()));
    } else {
        pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                          reinterpret_cast<const unsigned char*>(p->data()),
                                          p->size());
    }
    PkeyPtr pk(pub);
    MdCtxPtr md(EVP_MD_CTX_new());
    auto us = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
    if (key.type() == KeyType::rsa) {
        EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pk.get());
        return EVP_DigestVerify(md.get(), us(*sig), sig->size(), us(data), data.size()) == 1;
    }
    unsigned char hash[32];
    SHA256(us(data), data.size(), hash);
    EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, pk.get());
    return EVP_DigestVerify(md.get(), us(*sig), sig->size(), hash, 32) == 1;
}

}  // namespace

TEST_CASE("canonicalization cases from dkimpy", "[dkim]") {
    std::ifstream in(kData + "canonicalization.jsonl");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        JsonParser p{line};
        Json j = p.value();
        std::string kind = j.obj["kind"].str;
        INFO(j.obj["name"].str << " (" << kind << ")");
        Canon c = kind.starts_with("simple") ? Canon::simple : Canon::relaxed;
        if (kind.ends_with("body")) {
            StringSink sink;
            canon_body(c, j.obj["input"].str, sink);
            CHECK(sink.s == j.obj["expected"].str);
        } else {
            std::string got, want;
            for (auto& pair : j.obj["input"].arr)
                canon_header(c, pair.arr[0].str + ":" + pair.arr[1].str, got);
            for (auto& pair : j.obj["expected"].arr)
                want += pair.arr[0].str + ":" + pair.arr[1].str;
            CHECK(got == want);
        }
        ++n;
    }
    CHECK(n == 17);
}

TEST_CASE("relaxed body canonicalization across long inputs and odd whitespace", "[dkim]") {
    StringSink sink;
    std::string body;
    for (int i = 0; i < 5000; ++i) body += "a \t b\t\t\r\n \t\r\n";
    body += "\r\n\r\n \r\n";
    canon_body(Canon::relaxed, body, sink);
    std::string want;
    for (int i = 0; i < 5000; ++i) want += i + 1 < 5000 ? "a b\r\n\r\n" : "a b\r\n";
    CHECK(sink.s == want);
}

TEST_CASE("generated vectors: bh= and b= reproduced exactly", "[dkim]") {
    std::ifstream in(kData + "expected.tsv");
    std::string line;
    std::getline(in, line);
    int n = 0;
    while (std::getline(in, line)) {
        auto f = split_tsv(line);
        INFO(f[0]);
        reproduce(kData + "messages/" + f[0], std::stoi(f[1]));
        ++n;
    }
    CHECK(n == 18);
}

TEST_CASE("RFC 8463 Appendix A example: both signatures reproduced", "[dkim]") {
    reproduce(kData + "rfc-examples/rfc8463-appendix-a2-signed-relaxed.eml", 0);
    reproduce(kData + "rfc-examples/rfc8463-appendix-a2-signed-relaxed.eml", 1);
    reproduce(kData + "rfc-examples/rfc8463-draft-signed-simple.eml", 0);
    reproduce(kData + "rfc-examples/rfc8463-draft-signed-simple.eml", 1);
}

TEST_CASE("published key records of the RFC 8463 keys", "[dkim]") {
    CHECK(corpus_key("brisbane")->dns_record() ==
          "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    CHECK(corpus_key("test")->dns_record() ==
          "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a"
          "5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM"
          "3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
}

TEST_CASE("our signatures: format, over-signing, t= and x=, both algorithms", "[dkim]") {
    std::string m = slurp(kData + "rfc-examples/rfc6376-appendix-a-unsigned.eml");
    for (const char* sel : {"test", "brisbane"}) {
        for (auto [hc, bc] :
             {std::pair{Canon::relaxed, Canon::relaxed}, std::pair{Canon::simple, Canon::simple},
              std::pair{Canon::relaxed, Canon::simple}}) {
            SignSpec s;
            s.domain = "football.example.com";
            s.selector = sel;
            s.key = corpus_key(sel);
            s.header = hc;
            s.body = bc;
            s.headers = {"from", "to", "subject", "date", "message-id", "cc", "reply-to"};
            s.oversign = {"from", "list-unsubscribe"};
            s.timestamp = 1700000000;
            s.expire = 1700604800;
            std::string err;
            auto f = sign_message(m, s, err);
            INFO(err);
            REQUIRE(f);
            INFO(*f);
            CHECK(f->starts_with("DKIM-Signature: v=1; a=" + std::string(s.key->algorithm())));
            CHECK(f->find("t=1700000000; x=1700604800;") != std::string::npos);
            CHECK(f->find("h=from:to:subject:date:message-id:from:list-unsubscribe;") !=
                  std::string::npos);
            for (auto& l : split_crlf(*f)) CHECK(l.size() <= 76);
            std::string signed_msg = *f + m;
            CHECK(self_verify(signed_msg, *s.key));
            // Any change to a signed header or the body breaks it; an added From too.
            std::string changed = signed_msg;
            changed.replace(changed.find("Is dinner"), 2, "Was");
            CHECK_FALSE(self_verify(changed, *s.key));
            CHECK_FALSE(self_verify(*f + "From: evil@example.net\r\n" + m, *s.key));
        }
    }
}

TEST_CASE("a message without From cannot be signed", "[dkim]") {
    SignSpec s;
    s.domain = "x.example";
    s.selector = "s";
    s.key = corpus_key("brisbane");
    s.headers = {"from", "subject"};
    std::string err;
    CHECK_FALSE(sign_message("Subject: hi\r\n\r\nbody\r\n", s, err));
    CHECK(err.find("From") != std::string::npos);
}

TEST_CASE("key files: errors name the file, loose permissions warn", "[dkim]") {
    char tmpl[] = "/tmp/kasi-dkim-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string err, warn;
    CHECK_FALSE(PrivateKey::load(dir + "/missing", err, warn));
    CHECK(err.find("cannot read the key: No such file") != std::string::npos);
    {
        std::ofstream(dir + "/bad")
            << "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n";
    }
    err.clear();
    CHECK_FALSE(PrivateKey::load(dir + "/bad", err, warn));
    CHECK(err.find("cannot read the PEM private key") != std::string::npos);
    auto gen = PrivateKey::generate(KeyType::ed25519, 0, err);
    REQUIRE(gen);
    { std::ofstream(dir + "/ed") << gen->pem(); }
    chmod((dir + "/ed").c_str(), 0644);
    warn.clear();
    auto k = PrivateKey::load(dir + "/ed", err, warn);
    REQUIRE(k);
    CHECK(k->dns_record() == gen->dns_record());
    CHECK(warn.find("readable by everyone") != std::string::npos);
    chmod((dir + "/ed").c_str(), 0600);
    warn.clear();
    CHECK(PrivateKey::load(dir + "/ed", err, warn));
    CHECK(warn.empty());
    auto small = PrivateKey::generate(KeyType::rsa, 512, err);
    CHECK_FALSE(small);
    CHECK(err.find("at least 1024") != std::string::npos);
    auto rsa = PrivateKey::generate(KeyType::rsa, 2048, err);
    REQUIRE(rsa);
    CHECK(rsa->bits() == 2048);
    CHECK(rsa->dns_record().starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"));
    std::string cmd = "rm -rf " + dir;
    CHECK(system(cmd.c_str()) == 0);
}
