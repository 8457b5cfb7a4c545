// safetensors-hpp: files and sharded models read over HTTP(S) and from S3, by byte ranges, with
// libcurl. A companion of safetensors.hpp and model.hpp (which it includes); whoever never
// includes it never needs libcurl (CMake: the target safetensors::remote; link -lcurl).
//
//   remote_options           connections, retries, timeouts, TLS, a bearer token, S3 credentials
//   remote_file              a storage: a remote file read by range requests, checked and retried
//   try_open_remote          a reader over a remote file
//   try_open_remote_model    a model (index or single file) over remote shards
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_REMOTE_HPP
#define SAFETENSORS_REMOTE_HPP

#include "model.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace safetensors {

/// What remote reads retry, how often, how long they wait between attempts and how long one read
/// may take in all. An attempt that fails for a reason that may pass is retried, resuming at the
/// first byte not yet received: a connection that broke, timed out or stalled (the transport
/// errors of retries_transport, an allow-list: anything else, a TLS or certificate failure, an
/// unknown host, a malformed URL, is final), an answer 408, 429 or 5xx, or a body cut short or
/// misplaced. Only attempts that delivered no byte count against `retries`: a server that drops
/// every connection after a while still serves a long range to its end, and `deadline` bounds
/// the whole.
struct retry_policy {
  /// Attempts after the first that may deliver nothing before the read fails.
  unsigned retries = 5;
  /// The first retry waits about this long; each next one twice as long, up to max_delay, each
  /// jittered by a random factor in [0.5, 1.5). A longer Retry-After from the server is waited
  /// instead (up to max_delay).
  std::chrono::milliseconds initial_delay{200};
  /// The longest wait between two attempts.
  std::chrono::milliseconds max_delay{10000};
  /// The longest one read (one range, every attempt and wait included) may take; 0 for none.
  /// Past it the read fails with the last attempt's reason.
  std::chrono::milliseconds deadline{300000};

  /// Whether an answer with HTTP status `status` (not a 206) is worth another attempt: 408
  /// (request timeout), 429 (too many requests), 500, 502, 503 and 504 (a server or gateway
  /// that may recover). Other 5xx (501 not implemented, 505, a 530 some hosts send for a
  /// refused login) say the request itself will not succeed.
  static constexpr bool retries_status(long status) noexcept {
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
  }
  /// Whether a libcurl failure is worth another attempt: the connection could not be made, broke,
  /// timed out, stalled or brought nothing.
  static constexpr bool retries_transport(CURLcode code) noexcept {
    switch (code) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM: return true;
      default: return false;
    }
  }
  /// The wait before retry number `retry` (0 for the first), for a `jitter` in [0.5, 1.5) and
  /// the server's Retry-After in seconds (0 when it sent none).
  std::chrono::milliseconds delay(unsigned retry, double jitter, std::uint64_t retry_after_seconds) const noexcept {
    const auto longest = static_cast<double>(max_delay.count());
    double wait = static_cast<double>(initial_delay.count()) * jitter;
    for (unsigned i = 0; i < retry && wait < longest; ++i) wait *= 2;
    wait = std::max(wait, static_cast<double>(std::min<std::uint64_t>(retry_after_seconds, 3600)) * 1000.0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(wait, longest)));
  }
};

/// How remote files are reached. For s3:// URLs, credential, region and endpoint fields left
/// empty are taken from the environment as AWS tools take them (each field says which variable);
/// explicit values win. Nothing else is read from the environment.
struct remote_options {
  /// Bytes asked for by the first request of a file, which also learns the file's size from
  /// Content-Range. A header that fits (nearly every shard's: tens of KiB; a 5,000-tensor file's
  /// is 0.5 MiB) arrives with it, so opening costs one request; a larger one costs a second for
  /// the rest. On a wide-area link a round trip (20-100 ms) costs more than 1 MiB more of data.
  std::size_t first_request_size = std::size_t{1} << 20;
  /// Most connections one file keeps open and reads on at once (kept alive between reads). Loads
  /// read on as many as they have threads (load_options::threads), up to this.
  unsigned connections = 16;
  /// What is retried, how often and how long a read may take (see retry_policy).
  retry_policy retry;
  /// A connection not made in this time is a failed attempt.
  std::chrono::milliseconds connect_timeout{10000};
  /// A transfer that receives fewer than low_speed_limit bytes a second over low_speed_time
  /// (nothing at all included, headers or body) is a failed attempt, retried like a dropped
  /// connection: a server trickling a byte a second never holds a read. As curl's
  /// --speed-limit/--speed-time, with 1 KiB/s over 30 s (0: only a transfer that receives
  /// nothing for low_speed_time stalls).
  std::size_t low_speed_limit = 1024;
  /// See low_speed_limit; 0 turns the check off.
  std::chrono::milliseconds low_speed_time{30000};
  /// Check TLS certificates and host names (https). Turn off only for a test server.
  bool verify_tls = true;
  /// Follow HTTP redirects (a hub's resolve/ URLs redirect to a CDN): at most 10, to http or
  /// https only (https only after https), each redirect's body read to 4 KiB at most. The bearer
  /// token goes only to the scheme, host and port of the URL opened, never to another.
  bool follow_redirects = true;
  /// http(s): sent as `Authorization: Bearer TOKEN` (a Hugging Face token, say). Never taken from
  /// the environment: a token goes only where the caller sends it.
  std::string bearer_token;
  /// s3: the access key (else AWS_ACCESS_KEY_ID).
  std::string access_key_id;
  /// s3: the secret key (else AWS_SECRET_ACCESS_KEY).
  std::string secret_access_key;
  /// s3: the session token of temporary credentials (else AWS_SESSION_TOKEN).
  std::string session_token;
  /// s3: the region (else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1).
  std::string region;
  /// s3: an S3-compatible endpoint such as http://127.0.0.1:9000 (else AWS_ENDPOINT_URL), reached
  /// with path-style addresses (ENDPOINT/BUCKET/KEY). Without one: AWS's
  /// https://BUCKET.s3.REGION.amazonaws.com/KEY.
  std::string endpoint_url;
};

/// What a remote file's reads cost, for reports and tests.
struct remote_statistics {
  /// HTTP requests made (retries included).
  std::uint64_t requests = 0;
  /// Requests that were retries.
  std::uint64_t retries = 0;
  /// Body bytes received.
  std::uint64_t bytes_received = 0;
};

namespace detail {

/// Whether two http(s) URLs have the same scheme, host and port (credentials aside), compared
/// without regard to case: where a bearer token may go.
inline bool same_origin(std::string_view a, std::string_view b) {
  auto origin = [](std::string_view url) {
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::string();
    const std::size_t authority_end = url.find_first_of("/?#", scheme_end + 3);
    std::string_view authority = url.substr(scheme_end + 3, authority_end - (scheme_end + 3));
    const std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority.remove_prefix(at + 1);
    std::string text = std::string(url.substr(0, scheme_end + 3)) + std::string(authority);
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  const std::string left = origin(a);
  return !left.empty() && left == origin(b);
}

/// `reference` (a Location header: absolute, or relative to `base`) as an absolute URL, resolved
/// by libcurl's URL parser; empty when it cannot be.
inline std::string resolve_reference(const std::string& base, const std::string& reference) {
  CURLU* parsed = curl_url();
  if (parsed == nullptr) return {};
  std::string resolved;
  char* text = nullptr;
  if (curl_url_set(parsed, CURLUPART_URL, base.c_str(), CURLU_PATH_AS_IS) == CURLUE_OK &&
      curl_url_set(parsed, CURLUPART_URL, reference.c_str(), CURLU_PATH_AS_IS | CURLU_NON_SUPPORT_SCHEME) ==
          CURLUE_OK &&
      curl_url_get(parsed, CURLUPART_URL, &text, 0) == CURLUE_OK) {
    resolved = text;
  }
  curl_free(text);
  curl_url_cleanup(parsed);
  return resolved;
}

/// Initialises libcurl once per process, before any handle is made.
inline void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

/// `text` percent-encoded as S3 signs a key: every byte but A-Z a-z 0-9 - . _ ~ and '/'.
inline std::string encode_key(std::string_view text, bool keep_slashes = true) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slashes)) {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 15];
    }
  }
  return out;
}

/// True for a bucket name S3 accepts (3 to 63 lower-case letters, digits, '.' and '-', a letter
/// or digit at each end): anything else could carry a request to another host.
inline bool is_bucket_name(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  auto letter_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!letter_or_digit(name.front()) || !letter_or_digit(name.back())) return false;
  for (char c : name) {
    if (!letter_or_digit(c) && c != '.' && c != '-') return false;
  }
  return true;
}

inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

/// A parsed `Content-Range: bytes FIRST-LAST/SIZE` (or `bytes */SIZE`), unset where the header
/// is missing or malformed. Numbers are checked not to overflow.
struct content_range {
  bool present = false;
  bool unsatisfied = false;  // `bytes */SIZE`
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t size = 0;
};

inline bool parse_decimal(std::string_view& text, std::uint64_t& out) {
  std::size_t i = 0;
  out = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (!checked_mul(out, 10, out) || !checked_add(out, static_cast<std::uint64_t>(text[i] - '0'), out)) return false;
    ++i;
  }
  if (i == 0) return false;
  text.remove_prefix(i);
  return true;
}

inline content_range parse_content_range(std::string_view value) {
  content_range range;
  if (!starts_with(value, "bytes ")) return range;
  value.remove_prefix(6);
  if (starts_with(value, "*/")) {
    value.remove_prefix(2);
    range.unsatisfied = true;
  } else {
    if (!parse_decimal(value, range.first) || value.empty() || value.front() != '-') return range;
    value.remove_prefix(1);
    if (!parse_decimal(value, range.last) || value.empty() || value.front() != '/') return range;
    value.remove_prefix(1);
  }
  if (!parse_decimal(value, range.size) || !value.empty()) return range;
  if (!range.unsatisfied && (range.first > range.last || range.last >= range.size)) return range;
  range.present = true;
  return range;
}

/// The answer to one request, as the callbacks see it arrive.
struct http_answer {
  long status = 0;
  content_range range;
  std::string etag;
  std::string last_modified;
  std::string location;  // a redirect's Location, as sent
  std::uint64_t retry_after_seconds = 0;
  std::uint64_t error_body_bytes = 0;
  bool error_body_cut = false;  // the transfer was ended past 4 KiB of an error's body
  // Where the body goes and what it must be: bytes [first, first + capacity) of the file.
  std::byte* destination = nullptr;
  std::size_t capacity = 0;
  std::uint64_t first = 0;
  bool accept_shorter = false;   // the first request of a file may ask past its end
  std::uint64_t known_size = 0;  // 0 until the file's size is known
  std::size_t received = 0;
  std::string error_body;      // the start of an error answer's body
  bool checked = false;        // the status and Content-Range were checked
  std::string refusal;         // why the body was refused
  bool retry_refusal = false;  // whether that refusal is worth another attempt
  // Stall detection: the window being measured (since when, from which byte count) and the
  // bytes it must reach (window_quota) within window_length.
  std::chrono::steady_clock::time_point window_start = std::chrono::steady_clock::now();
  curl_off_t window_first = 0;
  curl_off_t window_quota = 1;
  std::chrono::milliseconds window_length{0};
  bool stalled = false;
};

// Ends a transfer that does not receive window_quota bytes within window_length: each window
// starts when the last one reached its quota. A burst followed by silence stalls one window
// after the burst (libcurl's own low-speed check averages a speed over several seconds, so
// a burst would keep such a transfer alive longer).
inline int on_progress(void* context, curl_off_t, curl_off_t downloaded, curl_off_t, curl_off_t) {
  auto& answer = *static_cast<http_answer*>(context);
  if (answer.window_length.count() <= 0) return 0;
  const auto now = std::chrono::steady_clock::now();
  if (downloaded - answer.window_first >= answer.window_quota) {
    answer.window_first = downloaded;
    answer.window_start = now;
    return 0;
  }
  if (now - answer.window_start < answer.window_length) return 0;
  answer.stalled = true;
  return 1;
}

/// Trims spaces and tabs at both ends.
inline std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

inline std::size_t on_header(char* data, std::size_t size, std::size_t count, void* context) {
  auto& answer = *static_cast<http_answer*>(context);
  const std::size_t length = size * count;
  std::string_view line(data, length);
  // A status line starts each response of a redirect chain: what came before was another's.
  if (starts_with(line, "HTTP/")) {
    const std::size_t space = line.find(' ');
    answer.status = 0;
    if (space != std::string_view::npos) {
      std::string_view code = line.substr(space + 1);
      std::uint64_t value = 0;
      if (parse_decimal(code, value) && value < 1000) answer.status = static_cast<long>(value);
    }
    answer.range = {};
    answer.etag.clear();
    answer.last_modified.clear();
    answer.location.clear();
    answer.error_body.clear();
    answer.error_body_bytes = 0;
    answer.retry_after_seconds = 0;
    return length;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return length;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string_view value = trimmed(line.substr(colon + 1));
  if (name == "content-range") {
    answer.range = parse_content_range(value);
  } else if (name == "location") {
    answer.location = std::string(value);
  } else if (name == "etag") {
    answer.etag = std::string(value);
  } else if (name == "last-modified") {
    answer.last_modified = std::string(value);
  } else if (name == "retry-after") {
    std::string_view seconds = value;
    std::uint64_t parsed = 0;
    if (parse_decimal(seconds, parsed) && seconds.empty()) answer.retry_after_seconds = parsed;
  }
  return length;
}

// Refuses the body of a response that is not exactly the bytes asked for: curl then ends the
// transfer, and nothing is delivered from it.
inline std::size_t refuse(http_answer& answer, std::string why, bool retry) {
  answer.refusal = std::move(why);
  answer.retry_refusal = retry;
  return 0;
}

/// " (Code)" for an S3 error body's <Code>Code</Code>, else nothing.
inline std::string error_code_of(std::string_view body) {
  const std::size_t open = body.find("<Code>");
  if (open == std::string_view::npos) return {};
  const std::size_t close = body.find("</Code>", open);
  if (close == std::string_view::npos || close - open - 6 > 64) return {};
  return " (" + std::string(body.substr(open + 6, close - open - 6)) + ")";
}

inline std::size_t on_body(char* data, std::size_t size, std::size_t count, void* context) {
  auto& answer = *static_cast<http_answer*>(context);
  const std::size_t length = size * count;
  if (!answer.checked) {
    if (answer.status != 206) {
      if (answer.status == 200)
        return refuse(answer, "the server answered 200 with the whole file: it does not serve byte ranges", false);
      // An error's body says why (S3 puts a <Code> in it): its first KiB is kept for the message.
      // Past 4 KiB the transfer is ended: an error body that never ends must not hold the read.
      const std::size_t room = answer.error_body.size() < 1024 ? 1024 - answer.error_body.size() : 0;
      answer.error_body.append(data, std::min(length, room));
      answer.error_body_bytes += length;
      if (answer.error_body_bytes > 4096) {
        answer.error_body_cut = true;
        return 0;
      }
      return length;
    }
    const content_range& got = answer.range;
    const std::uint64_t want_last = answer.first + answer.capacity - 1;
    if (!got.present || got.unsatisfied)
      return refuse(answer, "the server answered 206 without a valid Content-Range", true);
    if (answer.known_size != 0 && got.size != answer.known_size)
      return refuse(answer,
                    "the file changed during the load: its size was " + std::to_string(answer.known_size) + ", now " +
                        std::to_string(got.size),
                    false);
    const bool right_last =
        got.last == want_last || (answer.accept_shorter && got.last < want_last && got.last + 1 == got.size);
    if (got.first != answer.first || !right_last)
      return refuse(answer,
                    "the server answered bytes " + std::to_string(got.first) + "-" + std::to_string(got.last) +
                        " when bytes " + std::to_string(answer.first) + "-" + std::to_string(want_last) +
                        " were asked for",
                    true);
    answer.checked = true;
  }
  if (length > answer.capacity - answer.received)
    return refuse(answer, "the server sent more bytes than the range holds", true);
  std::memcpy(answer.destination + answer.received, data, length);
  answer.received += length;
  return length;
}
}  // namespace detail

/// A remote file read by HTTP range requests (`Range: bytes=a-b`): http://, https:// and s3://
/// (signed with AWS Signature Version 4, libcurl's CURLOPT_AWS_SIGV4). A storage for
/// basic_reader and for models: any number of threads may read at once, each on a connection of
/// its own from a pool kept alive between reads.
///
/// Opening asks for the first remote_options::first_request_size bytes: the answer's
/// Content-Range gives the file's size, its ETag the version, and the bytes are kept, so that
/// the reader finds the length and header there. Every answer is checked: status 206,
/// Content-Range exactly the range asked for and of the size first seen, the body exactly that
/// long; anything else is an IoError and no byte of it is delivered. A file that changes during
/// a load (its ETag, sent back as If-Match, or its size) is an IoError, never a mix of old and
/// new bytes. Failures that may pass (connection drops, timeouts, 429, 5xx, short or misplaced
/// bodies) are retried with jittered backoff, resuming at the first byte not received; the last
/// error says how many retries were made and why.
/// A pool of connections that several remote files share: together they keep at most
/// `capacity` open (the model's remote_options::connections), however many files there are, so a
/// model of thousands of shards holds a bounded number of sockets. A file opened without one
/// gets a pool of its own.
class remote_connections {
 public:
  /// A pool of at most `capacity` connections (at least one).
  explicit remote_connections(unsigned capacity) : capacity_(std::max(capacity, 1u)) {}
  remote_connections(const remote_connections&) = delete;
  remote_connections& operator=(const remote_connections&) = delete;
  ~remote_connections() {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  /// Connections open now (idle or in use).
  unsigned open_count() const {
    std::lock_guard<std::mutex> guard(lock_);
    return open_;
  }

 private:
  friend class remote_file;

  // An idle connection, or a new one while fewer than capacity are open; else waits for one.
  CURL* take() {
    std::unique_lock<std::mutex> guard(lock_);
    returned_.wait(guard, [&] { return !idle_.empty() || open_ < capacity_; });
    if (!idle_.empty()) {
      CURL* handle = idle_.back();
      idle_.pop_back();
      return handle;
    }
    CURL* handle = curl_easy_init();
    if (handle != nullptr) ++open_;
    return handle;
  }
  void give_back(CURL* handle) {
    std::lock_guard<std::mutex> guard(lock_);
    idle_.push_back(handle);
    returned_.notify_one();
  }

  const unsigned capacity_;
  mutable std::mutex lock_;
  std::condition_variable returned_;
  std::vector<CURL*> idle_;
  unsigned open_ = 0;
};

class remote_file {
 public:
  /// Opens `url` (http://, https:// or s3://BUCKET/KEY), reading its first bytes. Its reads use
  /// `connections` when given (shared with the other files opened with it), else a pool of
  /// options.connections of its own.
  static result<remote_file> try_open(const std::string& url, const remote_options& options = {},
                                      std::shared_ptr<remote_connections> connections = nullptr) {
    detail::curl_global();
    auto state = std::make_shared<shared_state>();
    state->url = url;
    state->shown_url = detail::redact_url(url);
    state->options = options;
    state->pool = connections ? std::move(connections) : std::make_shared<remote_connections>(options.connections);
    if (auto resolved = state->resolve(); !resolved) return resolved.error();
    remote_file file;
    file.state_ = std::move(state);
    if (auto first = file.read_first(); !first) return first.error();
    return file;
  }
  /// As try_open; throws safetensors::exception (aborts without exceptions) on failure.
  static remote_file open(const std::string& url, const remote_options& options = {}) {
    return try_open(url, options).value();
  }

  /// The file's size, from the first answer.
  std::uint64_t size() const noexcept { return size_; }
  /// The URL it was opened with, its password and secret query values redacted: errors name it.
  const std::string& path() const noexcept { return state_->shown_url; }
  /// The ETag of the version read (empty when the server gives none).
  const std::string& etag() const noexcept { return state_->etag; }
  /// The bytes the first request brought, which the reader reads its header from.
  std::size_t first_read_size() const noexcept { return prefix_.size(); }
  /// The reader has its header: the first answer's bytes go, so that an open file costs a small
  /// constant, not 1 MiB (a model of 200 shards held 200 of them). Later reads ask the server.
  void opened() noexcept {
    prefix_.clear();
    prefix_.shrink_to_fit();
  }
  /// What the reads cost so far, over every copy of this file.
  remote_statistics statistics() const noexcept {
    return {state_->requests.load(), state_->retries.load(), state_->bytes_received.load()};
  }

  /// Reads `count` bytes at `offset` into `destination`: from the first answer's bytes when they
  /// hold them, else by one range request (retried as the class says).
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (offset > size_ || count > size_ - offset)
      return detail::about(
          state_->shown_url,
          error(error_kind::io_error, "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                                          ") are past the end of the file (" + std::to_string(size_) + " bytes)"));
    if (count == 0) return {};
    if (offset + count <= prefix_.size()) {
      std::memcpy(destination, prefix_.data() + offset, count);
      return {};
    }
    return state_->fetch(offset, destination, count, false);
  }

 private:
  // What every copy of a file and every thread reading it share: the address, the options, the
  // pool of connections and the counters.
  struct shared_state {
    std::string url;
    std::string shown_url;    // url with its secrets redacted: what messages and path() show
    std::string request_url;  // after s3:// is turned into an endpoint address
    remote_options options;
    bool s3 = false;
    std::string sigv4;        // "aws:amz:REGION:s3"
    std::string credentials;  // "KEY:SECRET"
    std::string etag;
    bool send_if_match = false;
    std::string last_modified;  // the version's, when it has no strong ETag
    std::uint64_t size = 0;
    std::shared_ptr<remote_connections> pool;
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> retries{0};
    std::atomic<std::uint64_t> bytes_received{0};

    shared_state() = default;
    shared_state(const shared_state&) = delete;
    shared_state& operator=(const shared_state&) = delete;

    error fail(const std::string& what) const { return detail::about(shown_url, error(error_kind::io_error, what)); }

    result<void> resolve() {
      remote_options& o = options;
      if (detail::starts_with(url, "http://") || detail::starts_with(url, "https://")) {
        request_url = url;
        return {};
      }
      if (!detail::starts_with(url, "s3://")) return fail("not an http://, https:// or s3:// URL");
      s3 = true;
      const std::string rest = url.substr(5);
      const std::size_t slash = rest.find('/');
      if (slash == 0 || slash == std::string::npos || slash + 1 == rest.size())
        return fail("an S3 URL is s3://BUCKET/KEY");
      const std::string bucket = rest.substr(0, slash);
      if (!detail::is_bucket_name(bucket)) return fail("not a valid S3 bucket name: " + detail::quote(bucket));
      const std::string key = detail::encode_key(rest.substr(slash + 1));
      if (o.access_key_id.empty()) o.access_key_id = detail::environment("AWS_ACCESS_KEY_ID");
      if (o.secret_access_key.empty()) o.secret_access_key = detail::environment("AWS_SECRET_ACCESS_KEY");
      if (o.session_token.empty()) o.session_token = detail::environment("AWS_SESSION_TOKEN");
      if (o.region.empty()) o.region = detail::environment("AWS_REGION");
      if (o.region.empty()) o.region = detail::environment("AWS_DEFAULT_REGION");
      if (o.region.empty()) o.region = "us-east-1";
      if (o.endpoint_url.empty()) o.endpoint_url = detail::environment("AWS_ENDPOINT_URL");
      if (o.access_key_id.empty() || o.secret_access_key.empty())
        return fail("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or remote_options");
      std::string endpoint = o.endpoint_url;
      while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
      request_url = endpoint.empty() ? "https://" + bucket + ".s3." + o.region + ".amazonaws.com/" + key
                                     : endpoint + "/" + bucket + "/" + key;
      sigv4 = "aws:amz:" + o.region + ":s3";
      credentials = o.access_key_id + ":" + o.secret_access_key;
      return {};
    }

    CURL* take() { return pool->take(); }
    void give_back(CURL* handle) { pool->give_back(handle); }

    // One request for bytes [first, first + count) into `destination`.
    struct attempt {
      CURLcode code = CURLE_OK;
      detail::http_answer answer;
      std::string curl_message;
    };
    // One attempt: the request, and the redirects it leads to, followed here rather than by
    // libcurl, which reads a redirect's whole body (one that never ends, forever) to keep the
    // connection: here a redirect's body is read to 4 KiB at most, as an error's.
    attempt request(CURL* handle, std::uint64_t first, std::byte* destination, std::size_t count, bool first_request,
                    std::chrono::milliseconds time_left) {
      std::string hop_url = request_url;
      for (unsigned hops = 0;; ++hops) {
        attempt a = request_once(handle, hop_url, detail::same_origin(hop_url, request_url), first, destination, count,
                                 first_request, time_left);
        const long status = a.answer.status;
        const bool redirect = status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
        if (!redirect || !options.follow_redirects || s3) return a;
        if (a.answer.location.empty()) return a;
        const std::string next = detail::resolve_reference(hop_url, a.answer.location);
        if (next.empty()) return a;
        // http and https only, and from https to https only: never to ftp, file or another
        // protocol libcurl knows, and never from TLS back to plain text.
        const bool allowed = detail::starts_with(next, "https://") ||
                             (detail::starts_with(next, "http://") && !detail::starts_with(hop_url, "https://"));
        if (!allowed || hops == max_redirects) {
          a.code = allowed ? CURLE_TOO_MANY_REDIRECTS : CURLE_UNSUPPORTED_PROTOCOL;
          a.curl_message = allowed ? "more than " + std::to_string(max_redirects) + " redirects"
                                   : "the redirect to " + detail::quote(detail::redact_url(next)) +
                                         " is refused: only http and https are followed, and only https after https";
          return a;
        }
        hop_url = next;
      }
    }

    static constexpr unsigned max_redirects = 10;

    attempt request_once(CURL* handle, const std::string& address, bool send_token, std::uint64_t first,
                         std::byte* destination, std::size_t count, bool first_request,
                         std::chrono::milliseconds time_left) {
      attempt a;
      a.answer.destination = destination;
      a.answer.capacity = count;
      a.answer.first = first;
      a.answer.accept_shorter = first_request;
      a.answer.known_size = first_request ? 0 : size;
      char message[CURL_ERROR_SIZE] = {};
      const std::string range = std::to_string(first) + "-" + std::to_string(first + count - 1);
      // libcurl's names are called in parentheses: its headers define them as macros of
      // themselves (for gcc's type checks), which clang's -Wdisabled-macro-expansion reports.
      curl_slist* headers = nullptr;
      // Every request after the first answer with a validator asks for that version alone, the
      // first request's own retries included: a file replaced between two attempts is a 412.
      if (send_if_match) {
        headers = curl_slist_append(headers, ("If-Match: " + etag).c_str());
      } else if (!last_modified.empty()) {
        headers = curl_slist_append(headers, ("If-Unmodified-Since: " + last_modified).c_str());
      }
      if (s3) {
        // libcurl 7.88 signs without it, and S3 refuses a request that lacks it.
        headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        if (!options.session_token.empty())
          headers = curl_slist_append(headers, ("x-amz-security-token: " + options.session_token).c_str());
      } else if (!options.bearer_token.empty() && send_token) {
        // The token goes to the host it was given for, never to the one a redirect leads to.
        headers = curl_slist_append(headers, ("Authorization: Bearer " + options.bearer_token).c_str());
      }
      (curl_easy_setopt)(handle, CURLOPT_URL, address.c_str());
      (curl_easy_setopt)(handle, CURLOPT_HTTPGET, 1L);
      (curl_easy_setopt)(handle, CURLOPT_RANGE, range.c_str());
      (curl_easy_setopt)(handle, CURLOPT_HTTPHEADER, headers);
      (curl_easy_setopt)(handle, CURLOPT_HEADERFUNCTION, &detail::on_header);
      (curl_easy_setopt)(handle, CURLOPT_HEADERDATA, &a.answer);
      (curl_easy_setopt)(handle, CURLOPT_WRITEFUNCTION, &detail::on_body);
      (curl_easy_setopt)(handle, CURLOPT_WRITEDATA, &a.answer);
      (curl_easy_setopt)(handle, CURLOPT_ERRORBUFFER, message);
      (curl_easy_setopt)(handle, CURLOPT_NOSIGNAL, 1L);
      (curl_easy_setopt)(handle, CURLOPT_FOLLOWLOCATION, 0L);
      // The path goes as it is: libcurl would resolve "/../" in it, reaching another folder.
      (curl_easy_setopt)(handle, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
      (curl_easy_setopt)(handle, CURLOPT_PROTOCOLS_STR, "http,https");
#else
      (curl_easy_setopt)(handle, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
      (curl_easy_setopt)(handle, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
      (curl_easy_setopt)(handle, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
      (curl_easy_setopt)(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
      // The attempt ends with the read's deadline, however fast its bytes arrive (0: none).
      (curl_easy_setopt)(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(time_left.count()));
      a.answer.window_length = options.low_speed_time;
      const std::uint64_t quota =
          static_cast<std::uint64_t>(options.low_speed_limit) *
          static_cast<std::uint64_t>(std::max<std::int64_t>(options.low_speed_time.count(), 0)) / 1000;
      a.answer.window_quota = static_cast<curl_off_t>(std::clamp<std::uint64_t>(quota, 1, std::uint64_t{1} << 40));
      (curl_easy_setopt)(handle, CURLOPT_NOPROGRESS, 0L);
      (curl_easy_setopt)(handle, CURLOPT_XFERINFOFUNCTION, &detail::on_progress);
      (curl_easy_setopt)(handle, CURLOPT_XFERINFODATA, &a.answer);
      (curl_easy_setopt)(handle, CURLOPT_TCP_KEEPALIVE, 1L);
      // A handle keeps its connections alive between requests; two cover a host and the one
      // its redirects lead to, and keep a pool's sockets within twice its capacity.
      (curl_easy_setopt)(handle, CURLOPT_MAXCONNECTS, 2L);
      if (s3) {
        (curl_easy_setopt)(handle, CURLOPT_AWS_SIGV4, sigv4.c_str());
        (curl_easy_setopt)(handle, CURLOPT_USERPWD, credentials.c_str());
      }
      ++requests;
      a.code = curl_easy_perform(handle);
      (curl_easy_getinfo)(handle, CURLINFO_RESPONSE_CODE, &a.answer.status);
      a.curl_message = a.answer.stalled ? "fewer than " + std::to_string(a.answer.window_quota) + " bytes arrived in " +
                                              std::to_string(options.low_speed_time.count()) + " ms (a stall)"
                       : message[0] != '\0' ? message
                                            : curl_easy_strerror(a.code);
      (curl_easy_setopt)(handle, CURLOPT_HTTPHEADER, nullptr);
      (curl_easy_setopt)(handle, CURLOPT_ERRORBUFFER, nullptr);
      curl_slist_free_all(headers);
      bytes_received += a.answer.received;
      return a;
    }

    // Bytes [offset, offset + count) into `destination`, retried as the class says. The first
    // request of a file may be answered with fewer bytes (the file is smaller than asked for):
    // their number is `*received`.
    result<void> fetch(std::uint64_t offset, std::byte* destination, std::size_t count, bool first_request,
                       std::size_t* received_total = nullptr) {
      CURL* handle = take();
      if (handle == nullptr) return fail("cannot make a libcurl handle");
      const retry_policy& policy = options.retry;
      const auto started = std::chrono::steady_clock::now();
      std::size_t received = 0;
      unsigned fruitless = 0;  // attempts since the last that delivered bytes
      for (unsigned attempt_number = 0;; ++attempt_number) {
        if (attempt_number > 0) ++retries;
        std::chrono::milliseconds time_left{0};
        if (policy.deadline.count() > 0)
          time_left = std::max(std::chrono::milliseconds(1),
                               policy.deadline - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::steady_clock::now() - started));
        attempt a =
            request(handle, offset + received, destination + received, count - received, first_request, time_left);
        received += a.answer.received;
        fruitless = a.answer.received > 0 ? 0 : fruitless + 1;
        if (first_request && etag.empty() && last_modified.empty() && a.answer.status == 206) pin_version(a.answer);
        const std::string asked = "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + count) + ")";
        bool retry = false;
        std::string problem;
        if (a.code == CURLE_OK && a.answer.status == 206 && a.answer.checked) {
          const bool whole = received == count || (first_request && a.answer.range.last + 1 == a.answer.range.size &&
                                                   received == a.answer.range.size - offset);
          if (whole) {
            if (first_request) {
              size = a.answer.range.size;
            } else if (!etag.empty() && a.answer.etag != etag) {
              give_back(handle);
              return fail("the file changed during the load: its ETag was " + etag + ", now " + a.answer.etag);
            }
            if (received_total != nullptr) *received_total = received;
            give_back(handle);
            return {};
          }
          problem = "the body ended after " + std::to_string(a.answer.received) + " of the bytes asked for";
          retry = true;
        } else if (!a.answer.refusal.empty()) {
          problem = a.answer.refusal;
          retry = a.answer.retry_refusal;
        } else if (a.answer.status == 412) {
          give_back(handle);
          return fail("the file changed during the load: the server no longer has " +
                      (etag.empty() ? "the version of " + last_modified : "ETag " + etag) + " (412)");
        } else if (first_request && a.code == CURLE_OK && a.answer.received == 0 &&
                   ((a.answer.status == 416 && a.answer.range.present && a.answer.range.unsatisfied &&
                     a.answer.range.size == 0) ||
                    a.answer.status == 200)) {
          // An empty file: no byte of it can be asked for, and servers answer 416 (bytes */0) or
          // the whole file, empty (a 200 with a body would have been refused above).
          size = 0;
          if (received_total != nullptr) *received_total = 0;
          give_back(handle);
          return {};
        } else if (a.code != CURLE_OK && !a.answer.stalled && !a.answer.error_body_cut) {
          // libcurl's own failure (a refused connection, TLS, a name that does not resolve, a
          // redirect it may not follow) says more than the status of an answer before it.
          problem = a.curl_message + " (libcurl error " + std::to_string(static_cast<int>(a.code)) + ")";
          retry = retry_policy::retries_transport(a.code);
        } else if (a.answer.status != 0 && a.answer.status != 206) {
          problem = "HTTP status " + std::to_string(a.answer.status) + detail::error_code_of(a.answer.error_body);
          retry = retry_policy::retries_status(a.answer.status);
        } else {
          // No answer, or one cut short: the connection failed, timed out or was reset.
          problem = a.curl_message;
          retry = a.answer.stalled || a.code == CURLE_OK || retry_policy::retries_transport(a.code);
        }
        const auto wait = policy.delay(fruitless == 0 ? 0 : fruitless - 1, jitter(), a.answer.retry_after_seconds);
        const bool past_deadline =
            policy.deadline.count() > 0 && std::chrono::steady_clock::now() + wait - started >= policy.deadline;
        if (!retry || fruitless > policy.retries || past_deadline) {
          give_back(handle);
          // A file that is not there is not there whatever bytes were asked: no range in the message.
          const bool missing = a.answer.status == 404 || a.answer.status == 410;
          std::string message = missing
                                    ? problem + (a.answer.status == 404 ? ": no such file" : ": gone from the server")
                                    : asked + ": " + problem;
          if (attempt_number > 0) message += " (after " + std::to_string(attempt_number) + " retries)";
          if (retry && past_deadline)
            message += " (the read's deadline of " + std::to_string(policy.deadline.count()) + " ms has passed)";
          return fail(message);
        }
        std::this_thread::sleep_for(wait);
      }
    }

    // The version a file is read at: the first answer's ETag (a strong one, sent as If-Match),
    // else its Last-Modified (sent as If-Unmodified-Since).
    void pin_version(const detail::http_answer& answer) {
      etag = answer.etag;
      send_if_match = !etag.empty() && !detail::starts_with(etag, "W/");
      if (!send_if_match) last_modified = answer.last_modified;
    }

    static double jitter() {
      thread_local std::minstd_rand random(std::random_device{}());
      return 0.5 + std::uniform_real_distribution<double>(0.0, 1.0)(random);
    }
  };

  remote_file() = default;

  // The first request: the file's first bytes, its size and its ETag.
  result<void> read_first() {
    const std::size_t asked = std::max<std::size_t>(state_->options.first_request_size, 8);
    prefix_.resize(asked);
    std::size_t received = 0;
    if (auto read = state_->fetch(0, prefix_.data(), asked, true, &received); !read) return read;
    prefix_.resize(received);
    prefix_.shrink_to_fit();
    size_ = state_->size;
    return {};
  }

  std::shared_ptr<shared_state> state_;
  std::vector<std::byte> prefix_;
  std::uint64_t size_ = 0;
};

/// A reader over a remote file.
using remote_reader = basic_reader<remote_file>;
/// A model over remote shards.
using remote_model_reader = basic_model_reader<remote_file>;

/// Opens and validates the remote file at `url`, reading its header (one request when it fits
/// in remote_options::first_request_size, two otherwise), not its data.
inline result<remote_reader> try_open_remote(const std::string& url, const remote_options& remote = {},
                                             const read_options& options = {}) {
  auto file = remote_file::try_open(url, remote);
  if (!file) return file.error();
  return remote_reader::try_open(std::move(*file), options);
}
/// Opens the remote file at `url`; throws safetensors::exception.
inline remote_reader open_remote(const std::string& url, const remote_options& remote = {},
                                 const read_options& options = {}) {
  return try_open_remote(url, remote, options).value();
}

/// Opens the remote model at `url`: an index (a URL whose path ends in .json), whose shards are
/// found by relative URL beside it (without the index URL's query, if it has one), or a single
/// file. Shards are opened on first use; loads
/// read several shards and blocks at once, each thread on a connection of its own.
inline result<remote_model_reader> try_open_remote_model(const std::string& url, const remote_options& remote = {},
                                                         const read_options& options = {}) {
  // Every shard reads on one pool of remote.connections connections: a model of thousands of
  // shards keeps as few sockets open as a file.
  auto connections = std::make_shared<remote_connections>(remote.connections);
  auto open_file = [remote, connections](const std::string& location) {
    return remote_file::try_open(location, remote, connections);
  };
  const std::string path = url.substr(0, url.find_first_of("?#"));
  if (!detail::ends_with(path, ".json")) return remote_model_reader::try_from_file(url, open_file, options);
  // A shard's name (checked by the index's parser: no '/', no "..") is one path segment beside
  // the index, percent-encoded: a space, '#', '?' or an encoded "%2F" in it stays in its name
  // and never reaches another folder of the server.
  const std::string folder = path.substr(0, path.rfind('/') + 1);
  auto open_shard = [remote, folder, connections](const std::string& location) {
    const std::string name = location.substr(std::min(folder.size(), location.size()));
    return remote_file::try_open(folder + detail::encode_key(name, false), remote, connections);
  };
  auto file = remote_file::try_open(url, remote, connections);
  if (!file) return file.error();
  if (file->size() > options.max_header_size)
    return detail::about(
        detail::redact_url(url),
        error(error_kind::invalid_index, "larger than " + std::to_string(options.max_header_size) + " bytes"));
  std::string text(static_cast<std::size_t>(file->size()), '\0');
  if (auto read = file->read_at(0, reinterpret_cast<std::byte*>(text.data()), text.size()); !read) return read.error();
  auto index = model_index::try_parse(std::move(text));
  if (!index) return detail::about(detail::redact_url(url), index.error());
  // Shards are found beside the index's path: a query (?download=true) is the index's alone.
  return remote_model_reader::from_index(path, std::move(*index), open_shard, options);
}
/// Opens the remote model at `url`; throws safetensors::exception.
inline remote_model_reader open_remote_model(const std::string& url, const remote_options& remote = {},
                                             const read_options& options = {}) {
  return try_open_remote_model(url, remote, options).value();
}

}  // namespace safetensors

#endif  // SAFETENSORS_REMOTE_HPP
