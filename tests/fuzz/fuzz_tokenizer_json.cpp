// libFuzzer target: any bytes as a tokenizer.json. Loading either succeeds or throws
// npeff::Error; a loaded tokenizer must encode and decode without crashing. Any other exception,
// a sanitizer report or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "npeff/core/error.h"
#include "npeff/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto tok = npeff::tokenizer::load_hf_tokenizer_json_text(text, "fuzz.json");
    for (const char* probe :
         {"", "Hello world!", "  <s> 12345 \xC3\xA9\xF0\x9F\x98\x80\n\t", "ab"}) {
      const auto ids = tok.encode(probe);
      tok.decode(ids);
      npeff::tokenizer::DecodeOptions skip;
      skip.skip_special_tokens = true;
      tok.decode(ids, skip);
    }
  } catch (const npeff::Error&) {
  }
  return 0;
}
