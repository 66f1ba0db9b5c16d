# Sources of npeff_base: the LibTorch- and HDF5-free layer (GGUF and safetensors readers, GGUF
# dequantisation, tokenizers). Shared by the main build and the libFuzzer build in tests/fuzz
# (built with clang, no LibTorch).
set(NPEFF_BASE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/../src/io/mapped_file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/io/gguf.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/io/gguf_value.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/io/gguf_dequant.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/io/safetensors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/utf8.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/components.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/normalizers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/hf_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/gguf_vocab.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/llama2c.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/tokenizer/load.cpp
)
# PCRE2 (8-bit) runs the tokenizers' pre-tokenization regexes (UTF + UCP, JIT).
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# utf8proc: Unicode normalization forms, case mapping and categories for the HF normalizers
# (Debian's libutf8proc-dev; its .pc file is named libutf8proc).
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
