// psaddon: N-API binding for Debian's PocketSphinx 0.8+5prealpha (libpocketsphinx3 / libsphinxbase3).
//
// JavaScript surface (wrapped and documented by src/engines/stt/pocketsphinx/native.ts):
//
//   new Model(argv: string[], shareLm: boolean)
//     .load(): Promise<{ sharedLm: boolean, fallbackReason: string }>   parse args, read + verify the LM
//     .free(): undefined                                               drop this handle; decoders keep the model alive
//   new Decoder(model: Model)
//     .init(): Promise<void>                                           ps_init (+ attach a clone of the shared LM)
//     .process(pcm: Int16Array, wantHyp?: boolean, wantWords?: boolean)
//         : Promise<string | { text, words?: [{ word, start, end }], unchanged?: true }>
//                                                                      cleaned partial hypothesis (+ its word segments,
//                                                                      omitted when the text is the previous call's)
//     .endUtterance(): Promise<{ text, confidence, words: [{ word, start, end, confidence }], firstPass: boolean }>
//     .resetStream(): Promise<void>                                    drop the utterance, restore initial feature state
//     .free(): Promise<void>                                           ps_free; later calls reject
//   trim(): Promise<boolean>                                           glibc malloc_trim(0): give freed heap pages back
//
// Every method that touches ps_* runs in a Napi::AsyncWorker on the libuv thread pool, so no decoding happens on
// the event loop. A per-decoder mutex makes each decoder single-threaded even if a caller does not serialize.
//
// Logging: sphinxbase's log sink is process-global. ps_init(-logfn X) calls err_set_logfile(), which fopen()s the
// new file and fclose()s the old one without locking, so decoders initialised concurrently on pool threads could
// double-close a FILE*. We therefore reject -logfn, disable the log FILE* once at load time and install one callback
// that drops INFO/WARN and collects ERROR lines per thread; they are appended to the failing call's rejection.
#include <napi.h>

#include <pocketsphinx.h>
#include <sphinxbase/bitarr.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/hash_table.h>
#include <sphinxbase/logmath.h>
#include <sphinxbase/ngram_model.h>

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using Argv = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------------------------
// Logging and errors

// ERROR/FATAL lines logged by the current job on this thread, joined with "; ". Cleared when a job starts.
thread_local std::string tlsErrors;

void LogCallback(void*, err_lvl_t level, const char* fmt, ...) {
  if (level < ERR_ERROR || tlsErrors.size() > 512) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::string line(buf, std::strcspn(buf, "\n"));
  if (line.empty()) return;
  if (!tlsErrors.empty()) tlsErrors += "; ";
  tlsErrors += line;
}

[[noreturn]] void Fail(const std::string& what) {
  std::string msg = "pocketsphinx: " + what;
  if (!tlsErrors.empty()) msg += " (" + tlsErrors + ")";
  tlsErrors.clear();
  throw std::runtime_error(msg);
}

struct ConfigDeleter {
  void operator()(cmd_ln_t* c) const { cmd_ln_free_r(c); }
};
using ConfigPtr = std::unique_ptr<cmd_ln_t, ConfigDeleter>;

ConfigPtr ParseConfig(const Argv& args) {
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  cmd_ln_t* config = cmd_ln_parse_r(nullptr, ps_args(), static_cast<int32>(argv.size()), argv.data(), TRUE);
  if (!config) Fail("invalid decoder arguments");
  return ConfigPtr(config);
}

// ---------------------------------------------------------------------------------------------------------------
// Shared language model: mirrors of sphinxbase 5prealpha internals (src/libsphinxbase/lm/ngram_model_internal.h,
// lm_trie.h, ngram_model_trie.h). Only used after VerifyTrieLayout() accepted the loaded model.

constexpr int kNgramMaxOrder = 5;  // NGRAM_MAX_ORDER

struct MirrorNgramModel {  // struct ngram_model_s
  int refcount;
  uint32* n_counts;
  int32 n_1g_alloc;
  int32 n_words;
  uint8 n;
  uint8 n_classes;
  uint8 writable;
  uint8 flags;
  logmath_t* lmath;
  float32 lw;
  int32 log_wip;
  int32 log_zero;
  char** word_str;
  hash_table_t* wid;
  int32* tmp_wids;
  void** classes;
  void* funcs;
};

struct MirrorTrieBase {  // base_t
  uint8 word_bits;
  uint8 total_bits;
  uint32 word_mask;
  uint8* base;
  uint32 insert_index;
  uint32 max_vocab;
};

struct MirrorMiddle {  // middle_t
  MirrorTrieBase base;
  bitarr_mask_t next_mask;
  uint8 quant_bits;
  void* next_source;
};

struct MirrorLongest {  // longest_t
  MirrorTrieBase base;
  uint8 quant_bits;
};

struct MirrorLmTrie {  // lm_trie_t
  uint8* ngram_mem;
  size_t ngram_mem_size;
  void* unigrams;
  MirrorMiddle* middle_begin;
  MirrorMiddle* middle_end;
  MirrorLongest* longest;
  void* quant;
  float backoff_cache[kNgramMaxOrder];
  uint32 hist_cache[kNgramMaxOrder - 1];
};

struct MirrorTrieModel {  // ngram_model_trie_t
  MirrorNgramModel base;
  MirrorLmTrie* trie;
};

// A per-decoder shallow clone of the shared trie model.
//
// Why this is safe (checked against upstream sphinxbase/pocketsphinx 5prealpha sources and the Debian binaries):
//  * pocketsphinx reaches the model only through the ngram_model_set that ngram_search_init() wraps around it
//    (ps_set_lm -> ngram_search_init -> ngram_model_set_init, which stores the pointer without retaining it). The
//    set calls, on the submodel: ngram_ng_score/ngram_ng_prob (set score/raw_score, used by fwdtree, fwdflat,
//    bestpath, posterior), ngram_model_flush (set flush, from ngram_search_start), ngram_wid/ngram_unknown_wid
//    (build_widmap, set_map_words, known_wid: read-only hash_table_lookup on the shared `wid` table and reads of
//    the shared `word_str` strings), and ngram_model_free (set free: decrements the clone's refcount only).
//    pocketsphinx never calls ngram_model_apply_weights or ngram_model_casefold; ngram_model_add_word (which would
//    grow the shared unigram array and hash) is only reached through ps_add_word, which this addon never calls.
//  * Writes reach only per-clone memory: ngram_ng_score/prob read `classes` (n_classes == 0 here, verified) and
//    call funcs->score/raw_score = lm_trie_score(clone->trie, ...), whose only stores are update_backoff()'s
//    trie->backoff_cache/hist_cache (verified in the Debian disassembly: stores at lm_trie_t offsets 0x38..0x4c)
//    and lm_trie_flush() resets the same two arrays. Those arrays live inside the copied lm_trie_t. Everything
//    they point to (ngram_mem, unigrams, middle_t/longest_t descriptors, quant tables) is only read while scoring
//    (the quant readers are pure bitarr reads). Base-struct fields (lw, log_wip, refcount, ...) are per-clone
//    copies; `tmp_wids` (scratch for ngram_model_get_ngram) gets a per-clone buffer.
//  * The shared logmath_t is only read (logmath_log/exp/add); Debian's ngram_model_init/free do not touch its
//    refcount.
//  * Lifetime: the clone's refcount starts at INT_MAX/2, so ngram_model_free() from the set never reaches 0 and
//    never runs ngram_model_trie_free() (which would free the shared arrays). The clone memory is ours and is
//    released after ps_free(). The original model is freed when the last decoder and the JS handle are gone.
struct LmClone {
  MirrorTrieModel model;
  MirrorLmTrie trie;
  int32 tmp_wids[kNgramMaxOrder];

  explicit LmClone(ngram_model_t* shared) {
    const auto* src = reinterpret_cast<const MirrorTrieModel*>(shared);
    model = *src;
    trie = *src->trie;
    model.trie = &trie;
    model.base.refcount = INT_MAX / 2;
    std::fill(std::begin(tmp_wids), std::end(tmp_wids), 0);
    model.base.tmp_wids = tmp_wids;
    std::memset(trie.hist_cache, -1, sizeof trie.hist_cache);  // as lm_trie_init()/lm_trie_flush()
    std::memset(trie.backoff_cache, 0, sizeof trie.backoff_cache);
  }
  ngram_model_t* handle() { return reinterpret_cast<ngram_model_t*>(&model); }
};

bool InBlock(const uint8* p, const uint8* begin, size_t size) { return p >= begin && p < begin + size; }

// Checks the mirrors against a freshly read model. Returns "" when they match, else the first failed check.
// The base-struct checks run before the trie pointer is dereferenced.
std::string VerifyTrieLayout(ngram_model_t* lm, logmath_t* lmath, cmd_ln_t* config, const char* lmPath) {
  auto* m = reinterpret_cast<MirrorTrieModel*>(lm);
  const MirrorNgramModel& b = m->base;
  if (b.refcount != 1) return "refcount != 1";
  if (b.n != ngram_model_get_size(lm) || b.n < 2 || b.n > kNgramMaxOrder) return "order mismatch";
  if (b.n_counts != ngram_model_get_counts(lm)) return "n_counts pointer mismatch";
  if (b.lmath != lmath) return "logmath pointer mismatch";
  if (b.log_zero != logmath_get_zero(lmath)) return "log_zero mismatch";
  if (b.lw != cmd_ln_float32_r(config, "-lw")) return "language weight mismatch";
  if (b.n_classes != 0) return "class-based LMs are not supported";
  if (b.n_words != static_cast<int32>(b.n_counts[0])) return "word count mismatch";
  const int32 bos = ngram_wid(lm, "<s>");
  const int32 eos = ngram_wid(lm, "</s>");
  int32 hashed = -1;
  if (bos < 0 || bos >= b.n_words || std::strcmp(b.word_str[bos], "<s>") != 0) return "word_str mismatch";
  if (hash_table_lookup_int32(b.wid, "</s>", &hashed) != 0 || hashed != eos) return "word hash mismatch";

  struct stat st {};
  if (stat(lmPath, &st) != 0) return "cannot stat LM file";
  const MirrorLmTrie* t = m->trie;
  if (!t || !t->ngram_mem || !t->unigrams || !t->quant || !t->longest) return "null trie member";
  if (t->ngram_mem_size == 0 || t->ngram_mem_size > static_cast<size_t>(st.st_size)) return "implausible ngram_mem_size";
  if (t->middle_end - t->middle_begin != b.n - 2) return "middle array length mismatch";
  for (const MirrorMiddle* mid = t->middle_begin; mid != t->middle_end; ++mid)
    if (!InBlock(mid->base.base, t->ngram_mem, t->ngram_mem_size)) return "middle block outside ngram_mem";
  if (!InBlock(t->longest->base.base, t->ngram_mem, t->ngram_mem_size)) return "longest block outside ngram_mem";

  // Functional check: a clone must score exactly like the original, and scoring through the clone must leave the
  // original's backoff/history caches untouched.
  LmClone clone(lm);
  MirrorLmTrie before = *t;
  const char* phrase[] = {"<s>", "the", "middle", "of", "the", "night", "and", "we", "are", "glad", "to", "go", "</s>"};
  std::vector<int32> wids;
  for (const char* w : phrase) wids.push_back(ngram_wid(lm, w));
  for (int32 i = 0; i < 64; ++i) wids.push_back(static_cast<int32>((i * 7919 + 13) % b.n_words));
  std::vector<int32> viaClone;
  for (size_t i = 2; i < wids.size(); ++i) {
    int32 used = 0;
    int32 hist[2] = {wids[i - 1], wids[i - 2]};
    viaClone.push_back(ngram_ng_score(clone.handle(), wids[i], hist, 2, &used));
    viaClone.push_back(ngram_ng_prob(clone.handle(), wids[i], hist, 1, &used));
  }
  if (std::memcmp(before.backoff_cache, t->backoff_cache, sizeof before.backoff_cache) != 0 ||
      std::memcmp(before.hist_cache, t->hist_cache, sizeof before.hist_cache) != 0)
    return "scoring the clone wrote to the shared trie";
  size_t k = 0;
  for (size_t i = 2; i < wids.size(); ++i) {
    int32 used = 0;
    int32 hist[2] = {wids[i - 1], wids[i - 2]};
    if (ngram_ng_score(lm, wids[i], hist, 2, &used) != viaClone[k++]) return "clone score mismatch";
    if (ngram_ng_prob(lm, wids[i], hist, 1, &used) != viaClone[k++]) return "clone probability mismatch";
  }
  return "";
}

struct ModelCore {
  Argv decoderArgv;               // arguments for ps_init(); without -lm when the LM is shared
  logmath_t* lmath = nullptr;     // non-null iff sharing
  ngram_model_t* lm = nullptr;    // non-null iff sharing
  std::string fallbackReason;     // why the LM is not shared ("" when it is)

  ModelCore() = default;
  ModelCore(const ModelCore&) = delete;
  ModelCore& operator=(const ModelCore&) = delete;
  ~ModelCore() {
    if (lm) ngram_model_free(lm);
    if (lmath) logmath_free(lmath);
  }
};

Argv WithoutOption(const Argv& argv, const std::string& key) {
  Argv out;
  for (size_t i = 0; i < argv.size(); i += 2)
    if (argv[i] != key) out.insert(out.end(), {argv[i], argv[i + 1]});
  return out;
}

std::shared_ptr<ModelCore> LoadModel(const Argv& argv, bool share) {
  if (argv.size() % 2 != 0) Fail("arguments must be key/value pairs");
  for (size_t i = 0; i < argv.size(); i += 2)
    if (argv[i] == "-logfn") Fail("-logfn is not supported (logging is routed process-wide by the addon)");
  ConfigPtr config = ParseConfig(argv);
  auto core = std::make_shared<ModelCore>();
  core->decoderArgv = argv;
  if (!share) {
    core->fallbackReason = "sharing disabled by caller";
    return core;
  }
  const char* lmPath = cmd_ln_str_r(config.get(), "-lm");
  if (!lmPath) Fail("-lm is required");
  // Same parameters as ps_init() uses for the decoder's own logmath, so LM scores are in identical units.
  logmath_t* lmath = logmath_init(cmd_ln_float32_r(config.get(), "-logbase"), 0,
                                  cmd_ln_boolean_r(config.get(), "-bestpath"));
  if (!lmath) Fail("logmath_init failed");
  ngram_model_t* lm = ngram_model_read(config.get(), lmPath, NGRAM_AUTO, lmath);
  if (!lm) {
    logmath_free(lmath);
    Fail(std::string("cannot read language model ") + lmPath);
  }
  std::string problem = VerifyTrieLayout(lm, lmath, config.get(), lmPath);
  if (!problem.empty()) {
    ngram_model_free(lm);
    logmath_free(lmath);
    core->fallbackReason = "LM layout check failed: " + problem;
    return core;
  }
  core->lm = lm;
  core->lmath = lmath;
  core->decoderArgv = WithoutOption(argv, "-lm");
  return core;
}

// ---------------------------------------------------------------------------------------------------------------
// Results

struct WordOut {
  std::string word;
  double start;
  double end;
  double confidence;
};

struct UttResult {
  std::string text;
  double confidence = 0;
  std::vector<WordOut> words;
  // True when the lattice could not be built and the result is the first-pass backtrace (no posteriors).
  bool firstPass = false;
};

// A partial hypothesis: the text and, when asked for, its word segments (confidence unused: no posteriors yet).
struct PartialOut {
  std::string text;
  bool withWords = false;
  // The text equals the previous partial's of this utterance: its words were not recomputed (the
  // caller reuses the previous ones; the JS wrapper does).
  bool unchanged = false;
  std::vector<WordOut> words;
};

struct Unit {};

// "" for sentence markers and fillers (<s> </s> <sil> [NOISE] [SPEECH] ...); otherwise the word without its
// alternate-pronunciation suffix ("read(2)" -> "read"), lower-cased.
std::string CleanWord(const char* raw) {
  if (!raw || !*raw || raw[0] == '<' || raw[0] == '[' || raw[0] == '+') return "";
  std::string w(raw);
  size_t paren = w.find('(');
  if (paren != std::string::npos && paren > 0) w.resize(paren);
  for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return w;
}

std::string CleanHyp(const char* hyp) {
  std::string out;
  if (!hyp) return out;
  const char* p = hyp;
  while (*p) {
    while (*p == ' ') ++p;
    const char* start = p;
    while (*p && *p != ' ') ++p;
    if (p == start) break;
    std::string w = CleanWord(std::string(start, p).c_str());
    if (w.empty()) continue;
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

double Clamp01(double x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }

// ---------------------------------------------------------------------------------------------------------------
// Async plumbing

// Runs `work` on the libuv pool and settles a promise: resolved with done(env, result), or rejected with the
// message of a std::exception thrown by `work`. Holds a strong reference to `owner` until settled.
template <typename T>
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<T()>;
  using Done = std::function<Napi::Value(Napi::Env, T&)>;

  static Napi::Value Start(Napi::Object owner, Work work, Done done) {
    auto* job = new Job(owner, std::move(work), std::move(done));
    Napi::Promise promise = job->deferred_.Promise();
    job->Queue();
    return promise;
  }

 private:
  Job(Napi::Object owner, Work work, Done done)
      : Napi::AsyncWorker(owner.Env()),
        deferred_(Napi::Promise::Deferred::New(owner.Env())),
        owner_(Napi::Persistent(owner)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  void Execute() override {
    tlsErrors.clear();
    try {
      result_ = work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(done_(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Work work_;
  Done done_;
  T result_{};
};

Napi::Value Rejected(Napi::Env env, const std::string& message) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(Napi::Error::New(env, message).Value());
  return deferred.Promise();
}

Napi::Value Undefined(Napi::Env env, Unit&) { return env.Undefined(); }

struct AddonData {
  Napi::FunctionReference modelCtor;
};

// ---------------------------------------------------------------------------------------------------------------
// Model

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model", {InstanceMethod("load", &Model::Load), InstanceMethod("free", &Model::Free)});
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsBoolean()) {
      Napi::TypeError::New(env, "Model(argv: string[], shareLm: boolean)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsString()) {
        Napi::TypeError::New(env, "argv must contain strings only").ThrowAsJavaScriptException();
        return;
      }
      argv_.push_back(v.As<Napi::String>().Utf8Value());
    }
    share_ = info[1].As<Napi::Boolean>().Value();
  }

  std::shared_ptr<ModelCore> core() const { return core_; }

 private:
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (loadStarted_) return Rejected(env, "pocketsphinx: Model.load() may only be called once");
    loadStarted_ = true;
    Argv argv = argv_;
    bool share = share_;
    return Job<std::shared_ptr<ModelCore>>::Start(
        Value(), [argv, share] { return LoadModel(argv, share); },
        [this](Napi::Env env, std::shared_ptr<ModelCore>& core) -> Napi::Value {
          core_ = core;
          Napi::Object out = Napi::Object::New(env);
          out.Set("sharedLm", Napi::Boolean::New(env, core->lm != nullptr));
          out.Set("fallbackReason", Napi::String::New(env, core->fallbackReason));
          return out;
        });
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    core_.reset();
    return info.Env().Undefined();
  }

  Argv argv_;
  bool share_ = true;
  bool loadStarted_ = false;
  std::shared_ptr<ModelCore> core_;
};

// ---------------------------------------------------------------------------------------------------------------
// Decoder

// Per-stream state of the dynamic-feature stage (sphinxbase/feat.h feat_t), saved right after ps_init() and copied
// back by resetStream():
//  * Live CMN (cmn_t). Streaming forces CMN_LIVE, and cmn_live()/cmn_live_update() keep adapting mean, sum and nframe
//    across utterances. cmn_live_set() cannot undo that, because it fakes a 500-frame history
//    (sum = mean * CMN_WIN, nframe = CMN_WIN), while a fresh decoder starts with sum = 0 and nframe = 0.
//    So the whole struct is restored, together with the feature's CMN mode.
//  * The cepstrum ring (cepbuf, bufpos, curpos). feat_s2mfc2feat_live() replicates an utterance's first frame into
//    the delta window only when the utterance's first call carries frames. With the front end's VAD dropping
//    leading silence it usually carries none, so the first frames' deltas read whatever cepbuf holds: zeros in a
//    fresh decoder, the previous stream's last frames in a reused one.
// What is not restored: the fwdtree search keeps a little state across utterances (a few extra senones are active in
// its first frames). This changes path scores slightly but not the words or times. Word posteriors move by at most
// 6e-5 on our test clips, and resetting that state would need search internals.
struct FeatState {
  cmn_type_t type = CMN_NONE;
  bool hasCmn = false;
  std::vector<mfcc_t> mean, var, sum;
  int32 nframe = 0;
  std::vector<mfcc_t> cep;  // LIVEBUFBLOCKSIZE x cepsize, contiguous (ckd_calloc_2d)
  int32 bufpos = 0, curpos = 0;

  static void Take(std::vector<mfcc_t>& dst, const mfcc_t* src, size_t n) {
    if (src) dst.assign(src, src + n);
  }
  static void Put(mfcc_t* dst, const std::vector<mfcc_t>& src) {
    if (dst) std::copy(src.begin(), src.end(), dst);
  }

  void Save(const feat_t* feat) {
    type = feat->cmn;
    Take(cep, feat->cepbuf ? feat->cepbuf[0] : nullptr, static_cast<size_t>(LIVEBUFBLOCKSIZE) * feat->cepsize);
    bufpos = feat->bufpos;
    curpos = feat->curpos;
    const cmn_t* c = feat->cmn_struct;
    hasCmn = c != nullptr;
    if (!hasCmn) return;
    Take(mean, c->cmn_mean, c->veclen);
    Take(var, c->cmn_var, c->veclen);
    Take(sum, c->sum, c->veclen);
    nframe = c->nframe;
  }

  void Restore(feat_t* feat) const {
    feat->cmn = type;
    Put(feat->cepbuf ? feat->cepbuf[0] : nullptr, cep);
    feat->bufpos = bufpos;
    feat->curpos = curpos;
    if (!hasCmn) return;
    cmn_t* c = feat->cmn_struct;
    Put(c->cmn_mean, mean);
    Put(c->cmn_var, var);
    Put(c->sum, sum);
    c->nframe = nframe;
  }
};

class Decoder : public Napi::ObjectWrap<Decoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Decoder",
                       {InstanceMethod("init", &Decoder::Init), InstanceMethod("process", &Decoder::Process),
                        InstanceMethod("endUtterance", &Decoder::EndUtterance),
                        InstanceMethod("resetStream", &Decoder::ResetStream), InstanceMethod("free", &Decoder::Free)});
  }

  explicit Decoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Decoder>(info) {
    Napi::Env env = info.Env();
    auto* data = env.GetInstanceData<AddonData>();
    if (info.Length() < 1 || !info[0].IsObject() ||
        !info[0].As<Napi::Object>().InstanceOf(data->modelCtor.Value())) {
      Napi::TypeError::New(env, "Decoder(model: Model)").ThrowAsJavaScriptException();
      return;
    }
    model_ = Model::Unwrap(info[0].As<Napi::Object>())->core();
    if (!model_) {
      Napi::Error::New(env, "pocketsphinx: model is not loaded or has been freed").ThrowAsJavaScriptException();
    }
  }

  ~Decoder() override { Release(); }

 private:
  Napi::Value Init(const Napi::CallbackInfo& info) {
    if (initStarted_) return Rejected(info.Env(), "pocketsphinx: Decoder.init() may only be called once");
    initStarted_ = true;
    return Job<Unit>::Start(
        Value(),
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          Create();
          return Unit{};
        },
        Undefined);
  }

  Napi::Value Process(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int16_array) {
      return Rejected(env, "pocketsphinx: process() expects an Int16Array");
    }
    Napi::Int16Array arr = info[0].As<Napi::Int16Array>();
    std::vector<int16> pcm(arr.Data(), arr.Data() + arr.ElementLength());
    // Second argument: whether to compute the partial hypothesis (a backtrace; skip it when no
    // partial is wanted). Default true.
    const bool wantHyp = info.Length() < 2 || !info[1].IsBoolean() || info[1].As<Napi::Boolean>().Value();
    // Third argument: also return the partial's word segments (a second backtrace over the words
    // found so far; costs far less than decoding the audio). Default false.
    const bool wantWords = wantHyp && info.Length() >= 3 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    return Job<PartialOut>::Start(
        Value(),
        [this, pcm = std::move(pcm), wantHyp, wantWords] {
          std::lock_guard<std::mutex> lock(mu_);
          RequireLive();
          if (!inUtt_) {
            if (ps_start_utt(ps_) < 0) Fail("ps_start_utt failed");
            inUtt_ = true;
            lastWordsText_.clear();
            haveWordsText_ = false;
          }
          if (ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, FALSE) < 0) Fail("ps_process_raw failed");
          PartialOut out;
          if (!wantHyp) return out;
          int32 score = 0;
          out.text = CleanHyp(ps_get_hyp(ps_, &score));
          out.withWords = wantWords;
          if (!wantWords) return out;
          // Most 32 ms batches leave the text as it was: skip the second backtrace and the JS objects.
          if (haveWordsText_ && out.text == lastWordsText_) {
            out.unchanged = true;
            return out;
          }
          if (!out.text.empty()) Segments(out.words, false);
          lastWordsText_ = out.text;
          haveWordsText_ = true;
          return out;
        },
        [](Napi::Env env, PartialOut& p) -> Napi::Value {
          if (!p.withWords) return Napi::String::New(env, p.text);
          Napi::Object out = Napi::Object::New(env);
          out.Set("text", p.text);
          if (p.unchanged) out.Set("unchanged", true);
          else out.Set("words", WordsToJs(env, p.words, false));
          return out;
        });
  }

  static Napi::Array WordsToJs(Napi::Env env, const std::vector<WordOut>& words, bool withConfidence) {
    Napi::Array arr = Napi::Array::New(env, words.size());
    for (size_t i = 0; i < words.size(); ++i) {
      Napi::Object w = Napi::Object::New(env);
      w.Set("word", words[i].word);
      w.Set("start", words[i].start);
      w.Set("end", words[i].end);
      if (withConfidence) w.Set("confidence", words[i].confidence);
      arr.Set(static_cast<uint32_t>(i), w);
    }
    return arr;
  }

  Napi::Value EndUtterance(const Napi::CallbackInfo& info) {
    return Job<UttResult>::Start(
        Value(),
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          RequireLive();
          UttResult result;
          if (!inUtt_) return result;
          inUtt_ = false;
          // The first pass's own answer, kept in case the lattice cannot be built (see Collect). A
          // backtrace over the words so far: microseconds, against 20-80 ms for ending the utterance.
          UttResult firstPass;
          int32 score = 0;
          firstPass.text = CleanHyp(ps_get_hyp(ps_, &score));
          if (!firstPass.text.empty()) Segments(firstPass.words, false);
          if (ps_end_utt(ps_) < 0) Fail("ps_end_utt failed");
          if (!Collect(result) && !firstPass.words.empty()) {
            result = std::move(firstPass);
            result.firstPass = true;
          }
          return result;
        },
        [](Napi::Env env, UttResult& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("text", r.text);
          out.Set("confidence", r.confidence);
          out.Set("words", WordsToJs(env, r.words, !r.firstPass));
          out.Set("firstPass", r.firstPass);
          return out;
        });
  }

  Napi::Value ResetStream(const Napi::CallbackInfo& info) {
    return Job<Unit>::Start(
        Value(),
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          RequireLive();
          if (inUtt_) {
            inUtt_ = false;
            ps_end_utt(ps_);  // result abandoned; only the decoder state matters
          }
          feat0_.Restore(ps_get_feat(ps_));
          ps_start_stream(ps_);  // resets the front end's noise statistics (fe_reset_noisestats)
          return Unit{};
        },
        Undefined);
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    return Job<Unit>::Start(
        Value(),
        [this] {
          Release();
          return Unit{};
        },
        Undefined);
  }

  // --- pool-thread helpers (caller holds mu_ unless noted) ---

  void RequireLive() const {
    if (!ps_) Fail("decoder is not initialised or has been freed");
  }

  void Create() {
    if (!model_) Fail("decoder has been freed");
    ConfigPtr config = ParseConfig(model_->decoderArgv);
    ps_decoder_t* ps = ps_init(config.get());  // retains the config
    if (!ps) Fail("ps_init failed (check model paths and arguments)");
    if (model_->lm) {
      logmath_t* own = ps_get_logmath(ps);
      auto clone = std::make_unique<LmClone>(model_->lm);
      if (logmath_get_base(own) != logmath_get_base(model_->lmath) ||
          logmath_get_shift(own) != logmath_get_shift(model_->lmath) ||
          ps_set_lm(ps, "lm", clone->handle()) < 0 || ps_set_search(ps, "lm") < 0) {
        ps_free(ps);
        Fail("cannot attach the shared language model");
      }
      clone_ = std::move(clone);
    }
    ps_ = ps;
    frate_ = cmd_ln_int32_r(ps_get_config(ps_), "-frate");
    feat0_.Save(ps_get_feat(ps_));
  }

  // The final result of the utterance just ended (ps_end_utt done): the lattice best path, with word
  // posteriors. Returns false when there is no lattice: pocketsphinx then answers NULL for the
  // hypothesis and no segments, although the first pass recognised words. That happens when
  // find_end_node() (ngram_search.c) finds no </s> node in the last frame and falls back to the best
  // word exit of the last frame that has exits: it always prefers a </s> exit there, but
  // create_dag_nodes() skipped that very entry (a "non-final </s>", or one invalidated by -maxwpf
  // pruning), so the lookup fails ("Failed to find DAG node corresponding to </s>"; upstream marks it
  // "FIXME: This seems to happen a lot!"). Measured: 10 of 216 utterances of shared/data/asr_en
  // (leading silence 0/200/500 ms x endpointing 10/300/800) lost every word this way.
  bool Collect(UttResult& result) const {
    int32 score = 0;
    const char* hyp = ps_get_hyp(ps_, &score);
    if (!hyp) return false;
    result.text = CleanHyp(hyp);
    Segments(result.words, true);
    double sum = 0;
    for (const WordOut& w : result.words) sum += w.confidence;
    result.confidence = result.words.empty() ? 0 : sum / static_cast<double>(result.words.size());
    return true;
  }

  // Word segments of the current hypothesis: the lattice best path after ps_end_utt, the first-pass
  // backtrace before it. Times in seconds from the utterance start. With `posteriors`, each word's
  // lattice posterior (only meaningful after ps_end_utt; the backtrace has none and reports 0 = log 1).
  void Segments(std::vector<WordOut>& out, bool posteriors) const {
    logmath_t* lmath = ps_get_logmath(ps_);
    // Debian's 0.8+5prealpha numbers segment frames from the start of the *stream* (the count goes
    // on across utterances until ps_start_stream), not of the utterance. With `-remove_silence no`
    // (native.ts DEFAULT_DECODER_ARGS) no frame is dropped, so the first segment (`<s>`) begins at
    // the utterance's first frame: it is the base. (ps_get_n_frames does not track that counter.)
    int base = -1;
    for (ps_seg_t* seg = ps_seg_iter(ps_); seg; seg = ps_seg_next(seg)) {
      int sf = 0, ef = 0;
      ps_seg_frames(seg, &sf, &ef);
      if (base < 0) base = sf;
      sf -= base;
      ef -= base;
      std::string word = CleanWord(ps_seg_word(seg));
      if (word.empty()) continue;
      double conf = 0;
      if (posteriors) {
        int32 ascr = 0, lscr = 0, lback = 0;
        conf = Clamp01(logmath_exp(lmath, ps_seg_prob(seg, &ascr, &lscr, &lback)));
      }
      out.push_back({word, static_cast<double>(sf) / frate_, static_cast<double>(ef + 1) / frate_, conf});
    }
  }

  // Takes mu_ itself. Order matters: ps_free() drops the search's reference to the clone before the clone goes.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    if (ps_) ps_free(ps_);
    ps_ = nullptr;
    clone_.reset();
    model_.reset();
  }

  std::mutex mu_;
  std::shared_ptr<ModelCore> model_;
  std::unique_ptr<LmClone> clone_;
  ps_decoder_t* ps_ = nullptr;
  FeatState feat0_;
  int frate_ = 100;
  bool inUtt_ = false;
  // Text of the last partial whose words were returned in this utterance (see Process).
  std::string lastWordsText_;
  bool haveWordsText_ = false;
  bool initStarted_ = false;
};

// ---------------------------------------------------------------------------------------------------------------
// Returning memory (issue 14 item 7)
//
// A decoder's ~60 MB are malloc'ed on a pool thread, so they live in that thread's glibc arena. ps_free() puts
// them on the arena's free lists, but glibc gives an arena's pages back to the kernel only from the top of its heap:
// after a burst the gateway's RSS stayed at the burst's peak. malloc_trim(0) walks every arena and releases every
// whole free page (glibc >= 2.8). It holds each arena's lock while it walks it, so it runs on the pool.

class TrimWorker : public Napi::AsyncWorker {
 public:
  explicit TrimWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute() override { released_ = malloc_trim(0) != 0; }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), released_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  bool released_ = false;
};

// trim(): Promise<boolean> — true when some memory was returned to the system.
Napi::Value Trim(const Napi::CallbackInfo& info) {
  auto* worker = new TrimWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  err_set_logfp(nullptr);  // some code prints straight to the log FILE* (config dumps); disable that sink
  err_set_callback(LogCallback, nullptr);
  Napi::Function model = Model::Define(env);
  env.SetInstanceData(new AddonData{Napi::Persistent(model)});
  exports.Set("Model", model);
  exports.Set("Decoder", Decoder::Define(env));
  exports.Set("trim", Napi::Function::New(env, Trim, "trim"));
  return exports;
}

}  // namespace

NODE_API_MODULE(psaddon, InitAddon)
