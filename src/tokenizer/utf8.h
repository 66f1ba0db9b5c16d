// UTF-8 helpers shared by the tokenizers (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace npeff::tokenizer::utf8 {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not well formed
// (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
size_t valid_sequence_length(std::string_view s, size_t i);

// Byte offset of the first ill-formed sequence, or npos when `s` is valid UTF-8.
size_t first_invalid(std::string_view s);

// Throws npeff::Error naming `what` and the byte offset when `s` is not valid UTF-8.
void check_valid(std::string_view s, std::string_view what);

// Rust's String::from_utf8_lossy, which HF `tokenizers` uses: each maximal ill-formed subpart
// becomes one U+FFFD.
std::string lossy(std::string_view bytes);

// Length in bytes of the (valid) sequence whose lead byte is `lead`.
inline size_t sequence_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Code point of the valid sequence at s[i].
char32_t decode_at(std::string_view s, size_t i);

void append(std::string& out, char32_t cp);

// Unicode White_Space (Rust's char::is_whitespace).
bool is_whitespace(char32_t cp);

// Rust's char::is_ascii_punctuation || General_Category P (tokenizers' Punctuation and
// BertPreTokenizer).
bool is_punctuation(char32_t cp);

}  // namespace npeff::tokenizer::utf8
