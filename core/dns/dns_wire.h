// A strict structural check of a DNS message in wire format (RFC 1035 §4), done before
// ldns turns it into records. ldns alone accepts some broken packets (a record cut short,
// rdata of the wrong shape) that would then read as "no data"; here every one of them is
// named, so that the resolver can report a malformed answer (a temporary failure) instead.
//
// Checked: the 12-byte header; every name (label lengths 1..63, no reserved label types,
// at most 255 octets, compression pointers inside the packet and each one pointing before
// the previous jump, so no loop); each section holds exactly as many entries as the header
// says, every record's rdata lies inside the packet, and nothing follows the last record;
// the rdata of A, AAAA, NS, CNAME, PTR, MX, SOA and TXT has exactly its type's shape.
//
// dns_check_wire is a pure function of the bytes: the entry point for fuzzing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kasi {

struct DnsWireInfo {
    bool header = false;  // 12 bytes of header were there
    uint16_t id = 0;
    uint16_t flags = 0;  // QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE
    uint16_t qdcount = 0;
    bool question = false;  // exactly one question, well formed
    std::string qname;      // lower case, no trailing dot, odd bytes as \DDD ("" = root)
    uint16_t qtype = 0, qclass = 0;
    bool ok = false;    // the whole message is well formed
    std::string error;  // why not, when !ok
};

constexpr uint16_t dns_flag_qr = 0x8000;
constexpr uint16_t dns_flag_tc = 0x0200;

DnsWireInfo dns_check_wire(const uint8_t* data, size_t len);

}  // namespace kasi
