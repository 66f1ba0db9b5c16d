// Quoting of names and keys read from files in error messages, shared by the GGUF and
// safetensors readers (src/io/gguf*.cpp, src/io/safetensors.cpp): a hostile file must not be
// able to put control characters (or megabytes of text) into a message.
#pragma once

#include <cstddef>
#include <string>

namespace npeff::io_detail {

/// What printable() does with bytes >= 0x80.
enum class NonAscii {
  kEscape,  // raw bytes that may not be valid UTF-8 (GGUF strings): show them as \xNN
  kKeep,    // text known to be valid UTF-8 (JSON strings): keep it readable
};

/// `s` with control characters, DEL and backslashes shown as \xNN (so that \x sequences in the
/// output are unambiguous), cut after 120 bytes with the full length appended.
inline std::string printable(const std::string& s, NonAscii non_ascii) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  const std::size_t limit = 120;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool keep =
        c >= 0x20 && c != 0x7f && c != '\\' && (c < 0x80 || non_ascii == NonAscii::kKeep);
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > limit) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace npeff::io_detail
