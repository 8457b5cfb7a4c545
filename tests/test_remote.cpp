// Remote reading against real servers on 127.0.0.1 (tests/remote: nginx, S3 behind a Signature V4
// checking proxy, and a fault-injecting server), started by tests/remote/with_servers.py, which
// names them in environment variables. `safetensors_remote_tests --prepare DIR` writes the files
// they serve; the tests compare every byte read remotely with the same file read from DIR.
#define CATCH_CONFIG_RUNNER
#include "test_support.hpp"

#include <safetensors/remote.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace st = safetensors;
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : value;
}

const std::string& data_dir() {
  static const std::string dir = env("SAFETENSORS_REMOTE_DATA_DIR");
  return dir;
}

// Tensors of a model of 4 shards: 2-D, several dtypes, each shard's bytes a pattern of their
// offset in the shard.
const std::vector<st::tensor_declaration>& model_tensors() {
  static const std::vector<st::tensor_declaration> tensors = {
      {"embed", st::dtype::BF16, {512, 96}}, {"layer.0.w", st::dtype::F32, {96, 160}},
      {"layer.0.b", st::dtype::F32, {160}},  {"layer.1.w", st::dtype::F32, {160, 96}},
      {"layer.1.b", st::dtype::F32, {96}},   {"head", st::dtype::F16, {96, 400}}};
  return tensors;
}

// Writes the model (sharded) and two single files into `dir`; copies the reference corpus.
void prepare(const std::string& dir, const std::string& reference) {
  fs::create_directories(dir);
  st::shard_options options;
  options.max_shard_size = 70000;
  auto writer = st::make_sharded_writer(dir + "/model", model_tensors(), options);
  for (const st::tensor_declaration& t : model_tensors())
    writer.produce(
        t.name, [](st::span<std::byte> piece, std::uint64_t) { std::fill(piece.begin(), piece.end(), std::byte{0}); });
  writer.finish();
  for (const std::string& name : writer.file_names()) {
    const std::string path = dir + "/model/" + name;
    auto reader = st::open_pread(path);
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(reader.data_start()));
    for (std::uint64_t o = reader.data_start(); o < reader.data_start() + reader.data_size(); ++o)
      file.put(static_cast<char>(test::pattern_byte(o)));
  }
  // A header of 1.2 MB: more than the first request brings.
  std::vector<st::tensor_declaration> many;
  for (int i = 0; i < 16000; ++i)
    many.push_back({"blocks." + std::to_string(i) + ".attention.norm", st::dtype::U8, {3}});
  std::vector<st::tensor_source> sources;
  const std::vector<std::byte> three = {std::byte{1}, std::byte{2}, std::byte{3}};
  for (const auto& d : many) sources.push_back({d, three});
  st::save(dir + "/large_header.safetensors", sources);
  fs::copy(reference, dir + "/reference", fs::copy_options::recursive);
  // Shards whose names need encoding in a URL, and an index that names a file outside its folder
  // in encoded form, beside a file that must stay out of reach.
  fs::create_directories(dir + "/odd");
  st::save(dir + "/odd/shard #1 ?.safetensors", {{{"a", st::dtype::U8, {3}}, three}});
  test::write_text(dir + "/odd/model.safetensors.index.json", R"({"weight_map":{"a":"shard #1 ?.safetensors"}})");
  fs::create_directories(dir + "/escape/inner");
  st::save(dir + "/escape/secret.safetensors", {{{"s", st::dtype::U8, {3}}, three}});
  test::write_text(dir + "/escape/inner/model.safetensors.index.json",
                   R"({"weight_map":{"s":"..%2Fsecret.safetensors"}})");
}

// Options for tests: short waits between retries, so that a test of five retries is quick.
st::remote_options quick() {
  st::remote_options options;
  options.retry.initial_delay = std::chrono::milliseconds(10);
  options.retry.max_delay = std::chrono::milliseconds(200);
  return options;
}

std::string http(const std::string& path) { return env("SAFETENSORS_REMOTE_HTTP_URL") + "/" + path; }
std::string faulty(const std::string& spec, const std::string& path) {
  return env("SAFETENSORS_REMOTE_FAULT_URL") + "/fault/" + spec + "/" + path;
}
std::string s3(const std::string& path) { return "s3://" + env("SAFETENSORS_REMOTE_S3_BUCKET") + "/" + path; }

// Every tensor of `remote` compared with the same file read locally: names, dtypes, shapes,
// offsets and bytes.
template <class Reader>
void check_same_file(const Reader& remote, const st::pread_reader& local) {
  REQUIRE(remote.size() == local.size());
  CHECK(remote.header_length() == local.header_length());
  for (std::size_t i = 0; i < local.size(); ++i) {
    const st::tensor_info& a = remote.tensors()[i];
    const st::tensor_info& b = local.tensors()[i];
    CHECK(a.name == b.name);
    CHECK(a.dtype == b.dtype);
    CHECK(std::equal(a.shape.begin(), a.shape.end(), b.shape.begin(), b.shape.end()));
    CHECK(a.data_offsets == b.data_offsets);
  }
  CHECK(remote.metadata().size() == local.metadata().size());
  std::vector<st::load_request> requests;
  std::vector<std::vector<std::byte>> got;
  for (const st::tensor_info& info : remote.tensors()) got.emplace_back(static_cast<std::size_t>(info.byte_size()));
  for (std::size_t i = 0; i < remote.size(); ++i) requests.emplace_back(&remote.tensors()[i], got[i]);
  st::load_options options;
  options.threads = 4;
  options.merge_gap = 1 << 20;
  REQUIRE(remote.try_load_into(requests, options));
  for (std::size_t i = 0; i < local.size(); ++i) CHECK(got[i] == local.read(local.tensors()[i].name));
}

std::size_t write_text(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// A plain request to the fault server's control endpoints (GET /control/log, POST
// /control/reset): the body.
std::string control(const std::string& what, bool post) {
  CURL* handle = curl_easy_init();
  std::string body;
  const std::string url = env("SAFETENSORS_REMOTE_FAULT_URL") + "/control/" + what;
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &write_text);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &body);
  if (post) curl_easy_setopt(handle, CURLOPT_POSTFIELDS, "");
  const CURLcode code = curl_easy_perform(handle);
  curl_easy_cleanup(handle);
  REQUIRE(code == CURLE_OK);
  return body;
}

// Requests the fault server saw since its last reset whose path has `needle`.
std::size_t requests_seen(const std::string& needle) {
  const std::string log = control("log", false);
  std::size_t count = 0;
  for (std::size_t at = log.find("\"path\""); at != std::string::npos; at = log.find("\"path\"", at + 1)) {
    const std::size_t open = log.find('"', log.find(':', at) + 1);
    const std::size_t close = log.find('"', open + 1);
    if (log.substr(open + 1, close - open - 1).find(needle) != std::string::npos) ++count;
  }
  return count;
}

// Requests the fault server saw since its last reset that carried an Authorization header, those
// whose path has "/fault/" (`faulted`) or the others.
std::size_t authorized_requests(bool faulted) {
  const std::string log = control("log", false);
  std::size_t count = 0;
  for (std::size_t at = log.find('{'); at != std::string::npos; at = log.find('{', at + 1)) {
    const std::string entry = log.substr(at, log.find('}', at) - at);
    const bool is_faulted = entry.find("/fault/") != std::string::npos;
    if (is_faulted == faulted && entry.find("\"authorization\": true") != std::string::npos) ++count;
  }
  return count;
}

// Options for the fault tests: a first request of 4 KiB, so that tensor data comes in requests of
// their own (which the faults hit too).
st::remote_options small_first() {
  st::remote_options options = quick();
  options.first_request_size = 4096;
  options.low_speed_time = std::chrono::milliseconds(1000);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--prepare") {
    prepare(argv[2], argv[3]);
    return 0;
  }
  if (data_dir().empty()) {
    std::fprintf(stderr, "%s: run under tests/remote/with_servers.py (SAFETENSORS_REMOTE_DATA_DIR is not set)\n",
                 argv[0]);
    return 2;
  }
  return Catch::Session().run(argc, argv);
}

TEST_CASE("remote: the whole reference corpus over HTTP gives what it gives from disk", "[remote]") {
  std::ifstream in(data_dir() + "/reference/index.json");
  std::stringstream text;
  text << in.rdbuf();
  // index.json lists every case's file; read each both ways.
  std::size_t cases = 0;
  for (const auto& entry : fs::recursive_directory_iterator(data_dir() + "/reference")) {
    const std::string path = entry.path().string();
    if (!entry.is_regular_file() || path.size() < 12 || path.compare(path.size() - 12, 12, ".safetensors") != 0)
      continue;
    const std::string relative = path.substr(data_dir().size() + 1);
    INFO(relative);
    auto local = st::try_open_pread(path);
    auto remote = st::try_open_remote(http(relative), quick());
    CHECK(test::outcome(remote) == test::outcome(local));
    if (local && remote) check_same_file(*remote, *local);
    ++cases;
  }
  CHECK(cases >= 100);
}

TEST_CASE("remote: opening costs one request when the header fits the first, two otherwise", "[remote]") {
  const std::string shard = "model/model-00001-of-00004.safetensors";
  auto small = st::try_open_remote(http(shard), quick());
  REQUIRE(small);
  const st::remote_statistics opened = small->storage().statistics();
  CHECK(opened.requests == 1);
  CHECK(opened.retries == 0);
  CHECK(opened.bytes_received == std::min<std::uint64_t>(small->storage().size(), 1 << 20));

  auto large = st::try_open_remote(http("large_header.safetensors"), quick());
  REQUIRE(large);
  CHECK(large->header_length() > (1 << 20));
  const st::remote_statistics two = large->storage().statistics();
  CHECK(two.requests == 2);
  // The first megabyte, then the rest of the header alone.
  CHECK(two.bytes_received == (std::uint64_t{1} << 20) + (8 + large->header_length() - (1 << 20)));

  // An index URL's query stays the index's: shards are found beside its path.
  auto with_query = st::try_open_remote_model(http("model/model.safetensors.index.json?download=true"), quick());
  REQUIRE(with_query);
  CHECK(with_query->shard_paths()[0] == http("model/model-00001-of-00004.safetensors"));
  CHECK(with_query->try_validate());

  // A redirect is followed; the size and bytes are the file's.
  auto redirected = st::try_open_remote(http("redirect/" + shard), quick());
  REQUIRE(redirected);
  check_same_file(*redirected, st::open_pread(data_dir() + "/" + shard));
}

TEST_CASE("remote: a sharded model over HTTP and S3 loads in parallel, whole or sliced, byte for byte", "[remote]") {
  auto local = st::try_open_model_pread(data_dir() + "/model");
  REQUIRE(local);
  REQUIRE(local->shard_count() == 4);
  for (const std::string& url :
       {http("model/model.safetensors.index.json"), s3("model/model.safetensors.index.json")}) {
    INFO(url);
    auto model = st::try_open_remote_model(url, quick());
    REQUIRE(model);
    REQUIRE(model->shard_count() == 4);
    CHECK(model->total_size() == local->total_size());
    std::vector<std::vector<std::byte>> got, expected;
    std::vector<st::load_request> requests;
    for (const st::model_entry& entry : local->tensor_names()) {
      expected.push_back(local->read(entry.name));
      got.emplace_back(expected.back().size());
    }
    // Every tensor whole, and rank 1 of 2 of every 2-D tensor's columns.
    for (std::size_t i = 0; i < got.size(); ++i)
      requests.push_back(model->request(local->tensor_names()[i].name, got[i]));
    std::vector<std::vector<std::byte>> columns, expected_columns;
    for (const st::model_entry& entry : local->tensor_names()) {
      const st::tensor_info& info = local->info(entry.name);
      if (info.shape.size() != 2) continue;
      const auto half = static_cast<std::int64_t>(info.shape[1] / 2);
      const std::vector<st::slice_dim> dims = {st::all(), st::range(half, 2 * half)};
      expected_columns.push_back(test::naive_slice(local->read(entry.name), info, dims));
      columns.emplace_back(expected_columns.back().size());
    }
    std::size_t c = 0;
    for (const st::model_entry& entry : local->tensor_names()) {
      const st::tensor_info& info = local->info(entry.name);
      if (info.shape.size() != 2) continue;
      const auto half = static_cast<std::int64_t>(info.shape[1] / 2);
      requests.push_back(model->request(entry.name, columns[c++], {st::all(), st::range(half, 2 * half)}));
    }
    st::load_options options;
    options.threads = 4;
    options.block_size = 64 * 1024;
    options.merge_gap = 1 << 20;
    REQUIRE(model->try_load_into(requests, options));
    CHECK(got == expected);
    CHECK(columns == expected_columns);
  }
}

TEST_CASE("remote: S3 checks the signature: the right secret reads, a wrong one is refused", "[remote]") {
  st::remote_options wrong = quick();
  wrong.secret_access_key = env("SAFETENSORS_REMOTE_S3_WRONG_SECRET_ACCESS_KEY");
  auto refused = st::try_open_remote(s3("model/model-00001-of-00004.safetensors"), wrong);
  REQUIRE_FALSE(refused);
  CHECK(test::outcome(refused) + ": " + refused.error().message() ==
        "IoError: " + st::detail::quote(s3("model/model-00001-of-00004.safetensors")) +
            ": bytes [0, 1048576): HTTP status 403 (SignatureDoesNotMatch)");

  st::remote_options session = quick();
  session.access_key_id = env("SAFETENSORS_REMOTE_S3_SESSION_ACCESS_KEY_ID");
  session.secret_access_key = env("SAFETENSORS_REMOTE_S3_SESSION_SECRET_ACCESS_KEY");
  session.session_token = env("SAFETENSORS_REMOTE_S3_SESSION_TOKEN");
  auto with_token = st::try_open_remote(s3("model/model-00001-of-00004.safetensors"), session);
  REQUIRE(with_token);
  check_same_file(*with_token, st::open_pread(data_dir() + "/model/model-00001-of-00004.safetensors"));
  session.session_token.clear();
  CHECK(test::outcome(st::try_open_remote(s3("model/model-00001-of-00004.safetensors"), session)) == "IoError");
}

namespace {
const std::string fault_shard = "model/model-00001-of-00004.safetensors";

struct fault_outcome {
  std::string result;  // "ok" or "Kind: message"
  std::uint64_t retries = 0;
  std::size_t requests = 0;  // as the server counted them
};

// Opens the shard through `spec` and loads every tensor in 16 KiB blocks; "ok" only when every
// byte is the file's.
fault_outcome load_through(const std::string& spec, const st::remote_options& remote_options = small_first()) {
  control("reset", true);
  fault_outcome outcome;
  auto remote = st::try_open_remote(faulty(spec, fault_shard), remote_options);
  if (!remote) {
    outcome.result = test::outcome(remote) + ": " + remote.error().message();
  } else {
    const st::pread_reader local = st::open_pread(data_dir() + "/" + fault_shard);
    std::vector<std::vector<std::byte>> got;
    std::vector<st::load_request> requests;
    for (const st::tensor_info& info : remote->tensors()) got.emplace_back(static_cast<std::size_t>(info.byte_size()));
    for (std::size_t i = 0; i < remote->size(); ++i) requests.emplace_back(&remote->tensors()[i], got[i]);
    st::load_options options;
    options.threads = 2;
    options.block_size = 16 * 1024;
    auto loaded = remote->try_load_into(requests, options);
    if (!loaded) {
      outcome.result = test::outcome(loaded) + ": " + loaded.error().message();
    } else {
      bool same = true;
      for (std::size_t i = 0; i < local.size(); ++i) same = same && got[i] == local.read(local.tensors()[i].name);
      outcome.result = same ? "ok" : "WRONG BYTES";
    }
    outcome.retries = remote->storage().statistics().retries;
  }
  outcome.requests = requests_seen("/fault/" + spec + "/");
  return outcome;
}
}  // namespace

TEST_CASE("remote: faults are retried to the right bytes, or end in a clear error, never in wrong bytes", "[remote]") {
  auto named = [&](const std::string& spec, const std::string& message) {
    std::string url = faulty(spec, fault_shard);
    return "IoError: " + st::detail::quote(url) + ": " + message;
  };
  // Retried to the right bytes; the server saw the first attempt and every retry.
  struct retried {
    std::string spec;
    std::uint64_t retries;
  };
  for (const retried& fault : std::vector<retried>{{"drop-after=1000,times=2", 2},
                                                   {"short-body=500,times=2", 2},
                                                   {"short-length=300,times=1", 1},
                                                   {"wrong-range=10,times=1", 1},
                                                   {"status=503,times=3,retry-after=1", 3},
                                                   {"status=429,times=2", 2},
                                                   {"status=500,times=1", 1},
                                                   {"stall-after=100,seconds=5,times=1", 1},
                                                   {"delay=0.2", 0}}) {
    INFO(fault.spec);
    const fault_outcome outcome = load_through(fault.spec);
    CHECK(outcome.result == "ok");
    CHECK(outcome.retries == fault.retries);
    CHECK(outcome.requests >= 1 + fault.retries);
  }
  // Clear errors.
  const fault_outcome unavailable = load_through("status=503");
  CHECK(unavailable.result == named("status=503", "bytes [0, 4096): HTTP status 503 (after 5 retries)"));
  CHECK(unavailable.requests == 6);
  const fault_outcome no_ranges = load_through("ignore-range");
  CHECK(no_ranges.result ==
        named("ignore-range",
              "bytes [0, 4096): the server answered 200 with the whole file: it does not serve byte ranges"));
  CHECK(no_ranges.requests == 1);
  const fault_outcome not_found = load_through("status=404");
  CHECK(not_found.result == named("status=404", "HTTP status 404: no such file"));
  CHECK(not_found.requests == 1);
  // Replaced after the first request: the next, sent with If-Match, gets 412.
  const fault_outcome replaced = load_through("replace-after=1");
  CHECK_THAT(replaced.result, Catch::StartsWith(named("replace-after=1", "the file changed during the load")));
  // Replaced while the very first request was being retried: the retry asks for the version the
  // cut answer had (If-Match), gets 412, and the open fails; it never mixes two versions.
  const fault_outcome replaced_first = load_through("replace-after=1,cut-first=1000");
  CHECK_THAT(replaced_first.result,
             Catch::StartsWith(named("replace-after=1,cut-first=1000", "the file changed during the load")));
  const fault_outcome resized = load_through("replace-after=1,size-delta=-8");
  CHECK_THAT(resized.result,
             Catch::StartsWith(named("replace-after=1,size-delta=-8", "the file changed during the load")));
}

TEST_CASE("retry_policy: what is retried, and how long it waits", "[remote]") {
  using policy = st::retry_policy;
  CHECK(policy::retries_status(503));
  CHECK(policy::retries_status(429));
  CHECK(policy::retries_status(408));
  CHECK(policy::retries_status(502));
  CHECK(policy::retries_status(504));
  CHECK_FALSE(policy::retries_status(501));
  CHECK_FALSE(policy::retries_status(530));
  CHECK_FALSE(policy::retries_status(599));
  CHECK_FALSE(policy::retries_status(404));
  CHECK_FALSE(policy::retries_status(412));
  CHECK(policy::retries_transport(CURLE_COULDNT_CONNECT));
  CHECK(policy::retries_transport(CURLE_RECV_ERROR));
  CHECK(policy::retries_transport(CURLE_OPERATION_TIMEDOUT));
  CHECK_FALSE(policy::retries_transport(CURLE_SSL_CONNECT_ERROR));
  CHECK_FALSE(policy::retries_transport(CURLE_PEER_FAILED_VERIFICATION));
  CHECK_FALSE(policy::retries_transport(CURLE_COULDNT_RESOLVE_HOST));
  CHECK_FALSE(policy::retries_transport(CURLE_UNSUPPORTED_PROTOCOL));
  CHECK_FALSE(policy::retries_transport(CURLE_TOO_MANY_REDIRECTS));
  const policy waits;
  CHECK(waits.delay(0, 1.0, 0) == std::chrono::milliseconds(200));
  CHECK(waits.delay(2, 1.0, 0) == std::chrono::milliseconds(800));
  CHECK(waits.delay(3, 0.5, 0) == std::chrono::milliseconds(800));
  CHECK(waits.delay(20, 1.4, 0) == std::chrono::milliseconds(10000));
  CHECK(waits.delay(0, 1.0, 3) == std::chrono::milliseconds(3000));
  CHECK(waits.delay(0, 1.0, 60) == std::chrono::milliseconds(10000));
}

TEST_CASE("remote: attempts that deliver bytes do not use up the retries; the deadline bounds a read", "[remote]") {
  // Every connection closes after 1000 bytes: each attempt makes progress, so a 16 KiB block is
  // read to its end however many attempts it takes.
  const fault_outcome dropping = load_through("drop-after=1000");
  CHECK(dropping.result == "ok");
  CHECK(dropping.retries > 5);
  // Only fruitless attempts count: with one retry allowed, a server that fails every attempt
  // fails the read after two requests.
  st::remote_options one_retry = small_first();
  one_retry.retry.retries = 1;
  const fault_outcome unavailable = load_through("status=503", one_retry);
  CHECK(unavailable.requests == 2);
  CHECK_THAT(unavailable.result, Catch::EndsWith("bytes [0, 4096): HTTP status 503 (after 1 retries)"));
  // The deadline ends a read that would retry on and on.
  st::remote_options bounded = small_first();
  bounded.retry.retries = 1000;
  bounded.retry.deadline = std::chrono::milliseconds(400);
  const fault_outcome late = load_through("status=503", bounded);
  CHECK_THAT(late.result, Catch::EndsWith("(the read's deadline of 400 ms has passed)"));
  CHECK(late.requests >= 2);
  CHECK(late.requests < 20);
}

TEST_CASE("remote: a model whose shards fault loads right, and one replaced mid-load fails", "[remote]") {
  auto local = st::try_open_model_pread(data_dir() + "/model");
  REQUIRE(local);
  auto load_all = [&](const std::string& spec) -> std::string {
    control("reset", true);
    auto model = st::try_open_remote_model(faulty(spec, "model/model.safetensors.index.json"), small_first());
    if (!model) return test::outcome(model) + ": " + model.error().message();
    std::vector<std::vector<std::byte>> got;
    std::vector<st::load_request> requests;
    for (const st::model_entry& entry : local->tensor_names()) got.emplace_back(local->read(entry.name).size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      auto request = model->try_request(local->tensor_names()[i].name, got[i]);
      if (!request) return test::outcome(request) + ": " + request.error().message();
      requests.push_back(std::move(*request));
    }
    st::load_options options;
    options.threads = 4;
    options.block_size = 16 * 1024;
    auto loaded = model->try_load_into(requests, options);
    if (!loaded) return test::outcome(loaded) + ": " + loaded.error().message();
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i] != local->read(local->tensor_names()[i].name)) return "WRONG BYTES";
    }
    return "ok";
  };
  CHECK(load_all("drop-after=2000,times=1") == "ok");
  CHECK(load_all("status=503,times=2") == "ok");
  const std::string replaced = load_all("replace-after=1");
  CHECK_THAT(replaced, Catch::StartsWith("IoError: ") && Catch::Contains("the file changed during the load"));
}

TEST_CASE("remote: credentials in a URL are never shown", "[remote]") {
  CHECK(st::detail::redact_url("http://user:secret@host:8080/m/x.safetensors") ==
        "http://user:***@host:8080/m/x.safetensors");
  CHECK(st::detail::redact_url("https://user@host/x") == "https://user@host/x");
  CHECK(st::detail::redact_url("https://host/x?X-Amz-Signature=abc&X-Amz-Credential=k%2F1&part=2&token=t#f") ==
        "https://host/x?X-Amz-Signature=***&X-Amz-Credential=***&part=2&token=***#f");
  CHECK(st::detail::redact_url("https://host/x?download=true") == "https://host/x?download=true");
  CHECK(st::detail::redact_url("https://host/a@b/x") == "https://host/a@b/x");
  const std::string base = env("SAFETENSORS_REMOTE_HTTP_URL");
  const std::string with_password =
      "http://reader:hunter2@" + base.substr(std::string("http://").size()) + "/missing.safetensors";
  auto missing = st::try_open_remote(with_password, quick());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message().find("hunter2") == std::string::npos);
  CHECK_THAT(missing.error().message(), Catch::StartsWith("\"http://reader:***@"));
  auto file =
      st::try_open_remote("http://reader:hunter2@" + base.substr(std::string("http://").size()) + "/" + fault_shard);
  REQUIRE(file);
  CHECK(file->name().find("hunter2") == std::string::npos);
}

TEST_CASE("remote: an error whose body never ends is read no further than 4 KiB; a redirect's is dropped", "[remote]") {
  // Before, each attempt read the endless body until the server gave up (120 s), six times.
  const fault_outcome once = load_through("endless-body=503,times=1");
  CHECK(once.result == "ok");
  CHECK(once.retries == 1);
  st::remote_options one_retry = small_first();
  one_retry.retry.retries = 1;
  const fault_outcome always = load_through("endless-body=500", one_retry);
  CHECK_THAT(always.result, Catch::EndsWith("bytes [0, 4096): HTTP status 500 (after 1 retries)"));
  CHECK(always.requests == 2);
  // A redirect's endless body is dropped (by libcurl) and the redirect followed.
  const fault_outcome redirected = load_through("endless-body=302");
  CHECK(redirected.result == "ok");
}

TEST_CASE("remote: redirects lead to http and https only, and are not retried when refused", "[remote]") {
  const fault_outcome to_ftp = load_through("redirect-to=ftp");
  CHECK_THAT(to_ftp.result, Catch::StartsWith("IoError: ") && Catch::Contains("(libcurl error 1)"));
  CHECK(to_ftp.requests == 1);
  const fault_outcome to_ftps = load_through("redirect-to=ftps");
  CHECK_THAT(to_ftps.result, Catch::Contains("(libcurl error 1)"));
  CHECK(to_ftps.requests == 1);
}

TEST_CASE("remote: a shard's name is one path segment of its URL, encoded", "[remote]") {
  auto odd = st::try_open_remote_model(http("odd/model.safetensors.index.json"), quick());
  REQUIRE(odd);
  CHECK(odd->read("a") == std::vector<std::byte>{std::byte{1}, std::byte{2}, std::byte{3}});
  // "..%2Fsecret.safetensors" names a file in the index's folder, which has none: the file
  // one folder up is not reached.
  auto escape = st::try_open_remote_model(http("escape/inner/model.safetensors.index.json"), quick());
  REQUIRE(escape);
  auto reached = escape->try_read("s");
  REQUIRE_FALSE(reached);
  CHECK_THAT(reached.error().message(), Catch::Contains("..%252Fsecret.safetensors") && Catch::Contains("404"));
  // A bucket name S3 would refuse is refused before any request, so that it cannot name a host.
  auto bad_bucket = st::try_open_remote("s3://evil.example.com:80@x/key.safetensors", quick());
  REQUIRE_FALSE(bad_bucket);
  CHECK_THAT(bad_bucket.error().message(), Catch::Contains("not a valid S3 bucket name"));
}

TEST_CASE("remote: an open file keeps its header, not its first answer", "[remote]") {
  auto file = st::try_open_remote(http(fault_shard), quick());
  REQUIRE(file);
  CHECK(file->storage().first_read_size() == 0);  // the first answer's 1 MiB is gone
  auto model = st::try_open_remote_model(http("model/model.safetensors.index.json"), quick());
  REQUIRE(model);
  for (std::size_t i = 0; i < model->shard_count(); ++i) CHECK(model->shard(i).storage().first_read_size() == 0);
  const st::pread_reader local = st::open_pread(data_dir() + "/" + fault_shard);
  for (const st::tensor_info& info : local.tensors()) CHECK(file->read(info.name) == local.read(info.name));
}

TEST_CASE("remote: a server that trickles is dropped, retried, and ended by the deadline", "[remote]") {
  // 200 bytes a second, below the 1,024 asked for: each attempt ends when a window of 500 ms
  // brings fewer than 512 bytes.
  st::remote_options slow = small_first();
  slow.low_speed_time = std::chrono::milliseconds(500);
  const fault_outcome once = load_through("trickle=200,times=1", slow);
  CHECK(once.result == "ok");
  CHECK(once.retries == 1);
  // Every attempt delivers a few bytes, so none is fruitless: the deadline ends the read.
  slow.retry.deadline = std::chrono::milliseconds(2500);
  const fault_outcome always = load_through("trickle=200", slow);
  CHECK_THAT(always.result, Catch::EndsWith("(the read's deadline of 2500 ms has passed)"));
  CHECK(always.requests >= 3);
  // Silence after the headers: no byte, so the attempt counts against the retries.
  slow.retry.retries = 0;
  const fault_outcome silent = load_through("stall-after=0,seconds=5", slow);
  CHECK_THAT(silent.result, Catch::EndsWith("bytes [0, 4096): fewer than 512 bytes arrived in 500 ms (a stall)"));
  CHECK(silent.requests == 1);
  // Bytes arriving fast enough do not outlast the deadline either: the attempt itself ends there.
  st::remote_options bounded = small_first();
  bounded.retry.deadline = std::chrono::milliseconds(1500);
  const fault_outcome steady = load_through("trickle=2000", bounded);
  CHECK_THAT(steady.result, Catch::EndsWith("(the read's deadline of 1500 ms has passed)"));
  // low_speed_limit 0: only silence stalls, and a trickle is read to its end.
  st::remote_options patient = small_first();
  patient.low_speed_limit = 0;
  patient.low_speed_time = std::chrono::milliseconds(500);
  const fault_outcome trickled = load_through("trickle=100000,times=1", patient);
  CHECK(trickled.result == "ok");
  CHECK(trickled.retries == 0);
}

TEST_CASE("remote: files opened on one pool of connections share it, however many there are", "[remote]") {
  auto pool = std::make_shared<st::remote_connections>(2);
  std::vector<st::remote_file> files;
  for (int i = 0; i < 12; ++i) {
    auto file = st::remote_file::try_open(http(fault_shard), quick(), pool);
    REQUIRE(file);
    files.push_back(std::move(*file));
  }
  std::vector<std::byte> bytes(8);
  for (st::remote_file& file : files) {
    file.opened();
    REQUIRE(file.read_at(file.size() - 8, bytes.data(), bytes.size()));
  }
  CHECK(pool->open_count() <= 2);
  // A model's shards share one pool of remote_options::connections.
  st::remote_options one = quick();
  one.connections = 1;
  auto model = st::try_open_remote_model(http("model/model.safetensors.index.json"), one);
  REQUIRE(model);
  const auto& shard = model->shard(model->shard_count() - 1);
  std::vector<std::byte> last(static_cast<std::size_t>(shard.tensors().back().byte_size()));
  REQUIRE(shard.try_read_into(shard.tensors().back(), last));
  REQUIRE(model->try_validate());
}

TEST_CASE("remote: a bearer token goes to the URL's origin only, never where a redirect leads", "[remote]") {
  st::remote_options with_token = small_first();
  with_token.bearer_token = "hf_not_a_real_token";
  // Redirected within the origin: every request carries the token.
  const fault_outcome same = load_through("redirect-to=http", with_token);
  CHECK(same.result == "ok");
  CHECK(authorized_requests(true) >= 1);
  CHECK(authorized_requests(false) >= 1);
  // Redirected to another origin (nginx's port, which serves the same files): the token stays
  // behind. nginx's access log says what reached it.
  const std::string nginx = env("SAFETENSORS_REMOTE_HTTP_URL");
  const std::string port = nginx.substr(nginx.rfind(':') + 1);
  const std::string access_log = env("SAFETENSORS_REMOTE_NGINX_ACCESS_LOG");
  const std::size_t logged = test::read_text(access_log).size();
  const fault_outcome other = load_through("redirect-to=http,port=" + port, with_token);
  CHECK(other.result == "ok");
  CHECK(authorized_requests(true) >= 1);
  const std::string reached = test::read_text(access_log).substr(logged);
  CHECK(reached.find("model-00001-of-00004.safetensors") != std::string::npos);
  CHECK(reached.find("\"authorization\":\"\"") != std::string::npos);
  CHECK(reached.find("hf_not_a_real_token") == std::string::npos);
}

TEST_CASE("remote: libcurl's own failure is reported in its words, with the URL", "[remote]") {
  // Port 1 of 127.0.0.1: nothing listens there (tcpmux), so the connection is refused.
  st::remote_options no_retry = quick();
  no_retry.retry.retries = 0;
  auto refused = st::try_open_remote("http://127.0.0.1:1/model.safetensors", no_retry);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind() == st::error_kind::io_error);
  CHECK_THAT(refused.error().message(), Catch::StartsWith("\"http://127.0.0.1:1/model.safetensors\": bytes [0, ") &&
                                            Catch::Contains("(libcurl error 7)"));
}
