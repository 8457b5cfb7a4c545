// safetensors-hpp: a strict JSON scanner (RFC 8259, unique keys, bounded nesting) and UTF-8 validation, shared by the header and index parsers.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_JSON_SCANNER_HPP
#define SAFETENSORS_JSON_SCANNER_HPP

#include "error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace safetensors {

namespace detail {

/// Offset of the first byte that does not start or continue a valid UTF-8 sequence (as Rust's
/// str::from_utf8 decides: no overlong forms, no surrogates, nothing above U+10FFFF), or `size`.
inline std::size_t utf8_invalid_at(const unsigned char* text, std::size_t size) noexcept {
  std::size_t i = 0;
  while (i < size) {
    // Header JSON is mostly ASCII: skip it eight bytes at a time.
    while (i + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, text + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= size) break;
    unsigned char lead = text[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return i;
    }
    if (size - i < length) return i;
    if (text[i + 1] < low || text[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if ((text[i + k] & 0xc0) != 0x80) return i;
    }
    i += length;
  }
  return size;
}

}  // namespace detail

namespace detail {

/// A cursor over JSON text with the strict grammar this library's documents need (RFC 8259: no
/// trailing commas or comments, exact escapes, valid surrogate pairs, keys unique at every depth,
/// nesting below 128 levels). The header scanner and the index parser of sharded models are
/// built on it. A failing step records its message, with the position in the document, e.g.
/// "(at header byte 12)", and returns false.
class json_scanner {
 protected:
  json_scanner(const char* text, std::size_t size, const char* document) noexcept
      : start_(text), cur_(text), end_(text + size), document_(document) {}

  static constexpr int max_depth = 127;  // the root object is level 1; 128 levels are refused

  const char* start_;
  const char* cur_;
  const char* end_;
  const char* document_;  // "header" or "index", for messages
  std::string scratch_;
  std::string error_;

  std::size_t position() const noexcept { return static_cast<std::size_t>(cur_ - start_); }

  bool set_error(const std::string& what) {
    error_ = what + " (at " + document_ + " byte " + std::to_string(position()) + ")";
    return false;
  }

  void skip_whitespace() noexcept {
    if (cur_<end_&& static_cast<unsigned char>(*cur_)> ' ') return;  // compact headers have none
    while (cur_ < end_ && (*cur_ == ' ' || *cur_ == '\n' || *cur_ == '\r' || *cur_ == '\t')) ++cur_;
  }

  bool expect_colon() {
    skip_whitespace();
    if (cur_ == end_ || *cur_ != ':') return set_error("expected ':' after a key");
    ++cur_;
    skip_whitespace();
    return true;
  }

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool read_hex4(unsigned& out) {
    if (end_ - cur_ < 4) return set_error("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int digit = hex_value(cur_[i]);
      if (digit < 0) return set_error("invalid \\u escape");
      out = out * 16 + static_cast<unsigned>(digit);
    }
    cur_ += 4;
    return true;
  }

  static bool ends_run(char c) noexcept { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; }

  // The first '"', backslash or control byte in [from, end_), or end_. Names are long runs of
  // plain bytes, so whole words are tested first: a word with none of the three is skipped.
  const char* find_run_end(const char* from) const noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    while (end_ - from >= 8) {
      std::uint64_t word;
      std::memcpy(&word, from, 8);
      const std::uint64_t quotes = word ^ (ones * '"');
      const std::uint64_t slashes = word ^ (ones * '\\');
      const std::uint64_t special =
          ((quotes - ones) & ~quotes) | ((slashes - ones) & ~slashes) | ((word - ones * 0x20) & ~word);
      if (special & highs) break;
      from += 8;
    }
    while (from < end_ && !ends_run(*from)) ++from;
    return from;
  }

  // Scans a JSON string at cur_ and calls emit(pointer, size) for each unescaped run of bytes.
  template <class Emit>
  bool scan_string(Emit&& emit) {
    if (cur_ == end_ || *cur_ != '"') return set_error("expected a string");
    ++cur_;
    for (;;) {
      const char* run = cur_;
      cur_ = find_run_end(cur_);
      if (cur_ != run) emit(run, static_cast<std::size_t>(cur_ - run));
      if (cur_ == end_) return set_error("unterminated string");
      char c = *cur_;
      if (c == '"') {
        ++cur_;
        return true;
      }
      if (c != '\\') return set_error("control character in a string must be escaped");
      ++cur_;
      if (cur_ == end_) return set_error("unterminated escape");
      char escaped = *cur_++;
      char single;
      switch (escaped) {
        case '"': single = '"'; break;
        case '\\': single = '\\'; break;
        case '/': single = '/'; break;
        case 'b': single = '\b'; break;
        case 'f': single = '\f'; break;
        case 'n': single = '\n'; break;
        case 'r': single = '\r'; break;
        case 't': single = '\t'; break;
        case 'u': {
          unsigned code = 0;
          if (!read_hex4(code)) return false;
          if (code >= 0xdc00 && code <= 0xdfff) return set_error("lone trailing surrogate in \\u escape");
          if (code >= 0xd800 && code <= 0xdbff) {
            unsigned low = 0;
            if (end_ - cur_ < 2 || cur_[0] != '\\' || cur_[1] != 'u')
              return set_error("lone leading surrogate in \\u escape");
            cur_ += 2;
            if (!read_hex4(low)) return false;
            if (low < 0xdc00 || low > 0xdfff) return set_error("invalid surrogate pair in \\u escape");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          char utf8[4];
          std::size_t count;
          if (code < 0x80) {
            utf8[0] = static_cast<char>(code);
            count = 1;
          } else if (code < 0x800) {
            utf8[0] = static_cast<char>(0xc0 | (code >> 6));
            utf8[1] = static_cast<char>(0x80 | (code & 0x3f));
            count = 2;
          } else if (code < 0x10000) {
            utf8[0] = static_cast<char>(0xe0 | (code >> 12));
            utf8[1] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            utf8[2] = static_cast<char>(0x80 | (code & 0x3f));
            count = 3;
          } else {
            utf8[0] = static_cast<char>(0xf0 | (code >> 18));
            utf8[1] = static_cast<char>(0x80 | ((code >> 12) & 0x3f));
            utf8[2] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            utf8[3] = static_cast<char>(0x80 | (code & 0x3f));
            count = 4;
          }
          emit(utf8, count);
          continue;
        }
        default: return set_error("invalid escape in a string");
      }
      emit(&single, 1);
    }
  }

  // A short string (a field name, a dtype) as a view: of the header bytes themselves when the
  // string has no escape, else of its unescaped copy in scratch_, valid until the next call.
  bool scan_key(std::string_view& out) {
    if (cur_ < end_ && *cur_ == '"') {
      const char* stop = find_run_end(cur_ + 1);
      if (stop < end_ && *stop == '"') {
        out = std::string_view(cur_ + 1, static_cast<std::size_t>(stop - cur_ - 1));
        cur_ = stop + 1;
        return true;
      }
    }
    if (!scan_string_into(scratch_)) return false;
    out = scratch_;
    return true;
  }

  bool scan_string_into(std::string& out) {
    out.clear();
    return scan_string([&out](const char* bytes, std::size_t count) { out.append(bytes, count); });
  }

  // A plain unsigned decimal integer that fits 64 bits: no sign, fraction, exponent or leading
  // zero. `subject()` names it in a message, e.g. `a shape dimension of tensor "x"`.
  template <class Subject>
  bool scan_unsigned(std::uint64_t& out, Subject&& subject) {
    auto refuse = [&](const char* rule) { return set_error(subject() + " " + rule); };
    if (cur_ == end_) return refuse((std::string("is missing: the ") + document_ + " ends").c_str());
    if (*cur_ == '-') return refuse("must not be negative");
    if (*cur_ < '0' || *cur_ > '9') return refuse("must be an unsigned integer");
    const char* first = cur_;
    while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    const auto digits = static_cast<std::size_t>(cur_ - first);
    if (*first == '0' && digits > 1) return refuse("has a leading zero");
    // 2^64-1 has 20 digits: fewer cannot overflow, 20 can, compared as text; more always do.
    static constexpr std::string_view max_value = "18446744073709551615";
    if (digits > max_value.size() || (digits == max_value.size() && std::string_view(first, digits) > max_value))
      return refuse("is larger than 2^64-1");
    std::uint64_t value = 0;
    for (const char* digit = first; digit < cur_; ++digit)
      value = value * 10 + static_cast<std::uint64_t>(*digit - '0');
    if (cur_ < end_ && (*cur_ == '.' || *cur_ == 'e' || *cur_ == 'E'))
      return refuse("must be an integer without fraction or exponent");
    out = value;
    return true;
  }

  // Any JSON number, checked against the grammar and skipped.
  bool skip_number() {
    if (cur_ < end_ && *cur_ == '-') ++cur_;
    if (cur_ == end_) return set_error("invalid number");
    if (*cur_ == '0') {
      ++cur_;
    } else if (*cur_ >= '1' && *cur_ <= '9') {
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    } else {
      return set_error("invalid value");
    }
    if (cur_ < end_ && *cur_ == '.') {
      ++cur_;
      if (cur_ == end_ || *cur_ < '0' || *cur_ > '9') return set_error("invalid number");
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    }
    if (cur_ < end_ && (*cur_ == 'e' || *cur_ == 'E')) {
      ++cur_;
      if (cur_ < end_ && (*cur_ == '+' || *cur_ == '-')) ++cur_;
      if (cur_ == end_ || *cur_ < '0' || *cur_ > '9') return set_error("invalid number");
      while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9') ++cur_;
    }
    return true;
  }

  bool skip_literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - cur_) < word.size() || std::memcmp(cur_, word.data(), word.size()) != 0)
      return set_error("invalid value");
    cur_ += word.size();
    return true;
  }

  // The members of an object or array whose opening bracket was just consumed, through its
  // closing `close` ('}' or ']'): `member()` scans one, then ',' or `close` must follow. Every
  // object and array loop of the header and index parsers is this one step; `where()` names the
  // container in its errors, e.g. "in __metadata__".
  template <class Where, class Member>
  bool scan_members(char close, Where&& where, Member&& member) {
    skip_whitespace();
    if (cur_ < end_ && *cur_ == close) {
      ++cur_;
      return true;
    }
    for (;;) {
      if (!member()) return false;
      skip_whitespace();
      if (cur_ == end_) return set_error(std::string("unexpected end of ") + document_ + " " + where());
      if (*cur_ == close) {
        ++cur_;
        return true;
      }
      if (*cur_ != ',') return set_error(std::string("expected ',' or '") + close + "' " + where());
      ++cur_;
      skip_whitespace();
    }
  }
  // An object's members (see scan_members).
  template <class Where, class Member>
  bool scan_object(Where&& where, Member&& member) {
    return scan_members('}', std::forward<Where>(where), std::forward<Member>(member));
  }
  // An array's elements (see scan_members).
  template <class Where, class Element>
  bool scan_array(Where&& where, Element&& element) {
    return scan_members(']', std::forward<Where>(where), std::forward<Element>(element));
  }

  // Any JSON value at nesting level `depth` (the level a container opened here would have),
  // validated and skipped. Object keys must be unique here too.
  bool skip_value(int depth) {
    if (cur_ == end_) return set_error(std::string("unexpected end of ") + document_ + ", expected a value");
    switch (*cur_) {
      case '"': return scan_string([](const char*, std::size_t) {});
      case 't': return skip_literal("true");
      case 'f': return skip_literal("false");
      case 'n': return skip_literal("null");
      case '[': {
        if (depth > max_depth) return set_error("nesting deeper than 127 levels");
        ++cur_;
        const auto where = [] { return "in an array"; };
        return scan_array(where, [&] { return skip_value(depth + 1); });
      }
      case '{': {
        if (depth > max_depth) return set_error("nesting deeper than 127 levels");
        ++cur_;
        std::vector<std::string> keys;
        const auto where = [] { return "in an object"; };
        const bool scanned = scan_object(where, [&] {
          std::string key;
          if (!scan_string_into(key)) return false;
          keys.push_back(std::move(key));
          return expect_colon() && skip_value(depth + 1);
        });
        if (!scanned) return false;
        std::sort(keys.begin(), keys.end());
        auto repeated = std::adjacent_find(keys.begin(), keys.end());
        if (repeated != keys.end()) return set_error("duplicate key " + quote(*repeated));
        return true;
      }
      default: return skip_number();
    }
  }

  // Compared in 8-byte words (the last one overlapping the one before) rather than by memcmp,
  // which GCC calls for literals over 16 bytes: a call per literal per tensor.
  template <std::size_t N>
  bool match(const char (&literal)[N]) noexcept {
    constexpr std::size_t length = N - 1;
    if (static_cast<std::size_t>(end_ - cur_) < length) return false;
    std::uint64_t difference = 0;
    if constexpr (length >= 8) {
      for (std::size_t i = 0; i + 8 < length; i += 8) difference |= load_word(cur_ + i) ^ load_word(literal + i);
      difference |= load_word(cur_ + length - 8) ^ load_word(literal + length - 8);
    } else {
      for (std::size_t i = 0; i < length; ++i) difference |= static_cast<unsigned char>(cur_[i] ^ literal[i]);
    }
    if (difference != 0) return false;
    cur_ += length;
    return true;
  }

  static std::uint64_t load_word(const char* bytes) noexcept {
    std::uint64_t word;
    std::memcpy(&word, bytes, sizeof word);
    return word;
  }

  // Up to 19 digits without a leading zero: a number that cannot overflow. Anything else is left
  // to scan_unsigned, which also explains what is wrong.
  bool match_small_unsigned(std::uint64_t& out) noexcept {
    const char* first = cur_;
    std::uint64_t value = 0;
    while (cur_ < end_ && *cur_ >= '0' && *cur_ <= '9' && cur_ - first < 19) {
      value = value * 10 + static_cast<std::uint64_t>(*cur_ - '0');
      ++cur_;
    }
    if (cur_ == first || (*first == '0' && cur_ - first > 1)) return false;
    out = value;
    return true;
  }
};
}  // namespace detail

}  // namespace safetensors

#endif  // SAFETENSORS_JSON_SCANNER_HPP
