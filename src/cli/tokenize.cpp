// npeff tokenize: text -> ids and pieces (and ids -> text) with any tokenizer npeff loads, for
// users checking prompt templates and label tokens.
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;       ///< tokenizer.json, model directory, GGUF or llama2.c tokenizer.bin
  std::string text;            ///< text to encode
  std::string file;            ///< or: encode this file's whole contents
  std::string ids;             ///< or: decode these comma-separated ids
  bool no_special = false;     ///< do not add BOS/EOS (post-processor)
  bool plain_special = false;  ///< treat special-token strings in the text as plain text
  bool skip_special = false;   ///< when decoding: drop special tokens
  bool json = false;           ///< JSON on stdout
  int sources = 0;             ///< how many of --text/--file/--ids were given ('' counts)
  bool decode_ids = false;     ///< --ids was given (possibly empty)
};

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NPEFF_CHECK(used > 0 && used == item.size() && v >= 0 && v <= INT32_MAX, "--ids: '", item,
                "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o) {
  // Counted as given, not as non-empty: the empty text is a valid input (HF encodes it to no ids,
  // or to BOS alone where the tokenizer adds one).
  NPEFF_CHECK(o.sources == 1, "give exactly one of --text, --file, --ids (got ", o.sources, ")");
  PathCheck inputs;
  inputs.file_or_folder("--tokenizer", o.tokenizer);
  if (!o.file.empty()) inputs.file("--file", o.file);
  inputs.throw_if_any();
  const tokenizer::Tokenizer tok = tokenizer::load_tokenizer(o.tokenizer);
  nlohmann::json summary = {{"tokenizer", o.tokenizer},
                            {"description", tok.description()},
                            {"vocab_size", tok.vocab_size()}};
  std::vector<int32_t> ids;
  if (o.decode_ids) {
    ids = parse_ids(o.ids);
  } else {
    std::string text = o.text;
    if (!o.file.empty()) {
      std::ifstream in(o.file, std::ios::binary);
      NPEFF_CHECK(in.good(), "cannot open --file ", o.file);
      std::ostringstream all;
      all << in.rdbuf();
      text = all.str();
    }
    tokenizer::EncodeOptions eo;
    eo.add_special_tokens = !o.no_special;
    eo.parse_special = !o.plain_special;
    ids = tok.encode(text, eo);
    summary["text"] = text;
  }
  tokenizer::DecodeOptions d;
  d.skip_special_tokens = o.skip_special;
  const std::string decoded = tok.decode(ids, d);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(tok.piece(id));
  if (o.json) {
    summary["ids"] = ids;
    nlohmann::json p = nlohmann::json::array();
    for (const std::string& s : pieces) p.push_back(nlohmann::json::parse(quoted(s)));
    summary["pieces"] = p;
    summary["decoded"] = nlohmann::json::parse(quoted(decoded));
    summary["count"] = ids.size();
    std::cout << summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::cout << tok.description() << "\n" << ids.size() << " tokens\n";
  for (size_t i = 0; i < ids.size(); ++i) {
    std::cout << std::setw(6) << i << std::setw(9) << ids[i] << "  " << quoted(pieces[i])
              << (tok.is_special(ids[i]) ? "  (special)" : "") << "\n";
  }
  std::cout << "ids: ";
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
  std::cout << "\ndecoded: " << quoted(decoded) << "\n";
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "tokenize",
      "Encode text (or decode ids) with a tokenizer: HF tokenizer.json or model directory, GGUF "
      "file, or llama2.c tokenizer.bin. Prints ids, pieces and the decoded text.\n"
      "Examples:\n"
      "  npeff tokenize --tokenizer model_dir --text 'Review: great film. Sentiment:'\n"
      "  npeff tokenize --tokenizer SmolLM2-135M-Instruct.Q4_1.gguf --text ' Negative' --json\n"
      "  npeff tokenize --tokenizer tok512.bin --ids 1,403,407 --skip-special");
  sub->add_option("--tokenizer,-t", o->tokenizer, "Tokenizer file or model directory")->required();
  CLI::Option* text = sub->add_option("--text", o->text, "Text to encode ('' is valid)");
  CLI::Option* file = sub->add_option("--file", o->file, "Encode the whole contents of this file");
  CLI::Option* ids = sub->add_option("--ids", o->ids, "Decode these comma-separated ids instead");
  sub->add_flag("--no-special", o->no_special, "Do not add BOS/EOS (add_special_tokens=false)");
  sub->add_flag("--plain-special", o->plain_special,
                "Treat special-token strings in the text as plain text");
  sub->add_flag("--skip-special", o->skip_special, "Drop special tokens when decoding");
  sub->add_flag("--json", o->json, "Print a JSON summary");
  sub->callback([o, &runner, text, file, ids] {
    o->sources = static_cast<int>((text->count() > 0) + (file->count() > 0) + (ids->count() > 0));
    o->decode_ids = ids->count() > 0;
    runner = [o] { return run_tokenize(*o); };
  });
}

}  // namespace npeff::cli
