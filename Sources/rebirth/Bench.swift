import ArgumentParser
import Foundation
import Graph
import Runtime

/// `rebirth bench MODEL`: latency percentiles and peak memory of the built-in runtime.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time a model with rebirth's runtime: min, p50 and p90 latency, and peak memory.",
    discussion: """
      Runs the model --warmup times untimed, then --runs times timed, on the same
      inputs (those of --inputs/--input, or seeded random values as `rebirth
      verify` makes them). p50 and p90 are nearest-rank percentiles of the timed
      runs. Peak memory is the process's peak resident set size (ru_maxrss), so
      it includes the loaded model, its inputs and the runtime. The JSON form
      has the keys min_ms, p50_ms, p90_ms and peak_rss_bytes, and a few more;
      load_ms is the time from opening the file to a session ready to run
      (reading and validating the model, then planning it). --load-only
      measures only that.

      Examples:
        rebirth bench model.onnx
        rebirth bench model.onnx --threads 1 --runs 50 --format json
        rebirth bench model.onnx --dim N=8
        rebirth bench model.tmf --load-only --format json               # load time only
      """)

  @Argument(help: "The model to time (.onnx or .tmf).")
  var model: String

  @Option(help: "Threads for the runtime and BLAS (default: every core).")
  var threads: Int?

  @Option(help: "Timed runs.")
  var runs: Int = 20

  @Option(help: "Untimed runs first.")
  var warmup: Int = 3

  @Option(help: "Report format: text or json.")
  var format: ReportFormat = .text

  @Flag(help: "Only open the model and make it ready to run; report that time (load_ms).")
  var loadOnly = false

  @OptionGroup var feeds: FeedOptions
  @OptionGroup var random: RandomInputOptions

  func run() throws {
    guard runs >= 1 else { throw CLIError.usage("--runs must be at least 1, not \(runs)") }
    guard warmup >= 0 else { throw CLIError.usage("--warmup must be at least 0, not \(warmup)") }
    let dims = try random.parsedDims()
    if !feeds.isEmpty && !dims.isEmpty {
      throw CLIError.usage("--dim applies to random inputs only, not with --input/--inputs")
    }
    let threads = try threadCount(threads)
    let clock = ContinuousClock()
    let loadStart = clock.now
    let loaded = try LoadedModel(path: model, threads: threads)
    let loadMS = milliseconds(clock.now - loadStart)
    guard !loadOnly else {
      let report = BenchReport(
        model: model, threads: threads, runs: 0, warmup: 0, times: [], peakRSS: peakResidentBytes(), loadMS: loadMS)
      print(format == .json ? report.json : report.text, terminator: format == .json ? "\n" : "")
      return
    }
    let given =
      feeds.isEmpty
      ? try RandomInputs(model: loaded.model, dims: dims, seed: random.seed).make().mapValues { ($0, "random input") }
      : try readFeeds(feeds, for: loaded)
    try checkFeeds(given, for: loaded)
    let inputs = given.mapValues(\.array)

    for _ in 0..<warmup { _ = try loaded.run(inputs) }
    var times: [Double] = []
    var cpuTimes: [Double] = []
    times.reserveCapacity(runs)
    cpuTimes.reserveCapacity(runs)
    // One thread does all the work of a one-thread run: its own CPU time is the run's. The
    // process's would also count OpenBLAS's idle pool, which busy-waits for its first ~0.1 s
    // after the library loads (it once made a 3 ms run cost 5 ms of CPU).
    let scope: CPUScope = threads == 1 ? .thread : .process
    for _ in 0..<runs {
      let cpuStart = cpuMilliseconds(scope)
      let start = clock.now
      _ = try loaded.run(inputs)
      times.append(milliseconds(clock.now - start))
      cpuTimes.append(cpuMilliseconds(scope) - cpuStart)
    }
    let report = BenchReport(
      model: model, threads: threads, runs: runs, warmup: warmup, times: times, cpuTimes: cpuTimes, cpuScope: scope,
      peakRSS: peakResidentBytes(), loadMS: loadMS)
    switch format {
    case .text: print(report.text, terminator: "")
    case .json: print(report.json)
    }
  }
}

struct BenchReport: Encodable {
  let model: String
  let threads: Int
  let runs: Int
  let warmup: Int
  let min_ms: Double
  let p50_ms: Double
  let p90_ms: Double
  let max_ms: Double
  let mean_ms: Double
  /// CPU time per run, median: unlike wall-clock latency it does not count time the process
  /// waited for a CPU, so it compares variants on a busy machine. Of the calling thread with one
  /// thread, else of the whole process (`cpu_scope`).
  let cpu_p50_ms: Double
  /// `thread` or `process`: whose CPU time `cpu_p50_ms` is.
  let cpu_scope: CPUScope
  let peak_rss_bytes: Int
  /// Opening the model file until a session is ready to run.
  let load_ms: Double

  init(
    model: String, threads: Int, runs: Int, warmup: Int, times: [Double], cpuTimes: [Double] = [],
    cpuScope: CPUScope = .process, peakRSS: Int, loadMS: Double = 0
  ) {
    load_ms = loadMS
    cpu_scope = cpuScope
    cpu_p50_ms = Self.percentile(cpuTimes.sorted(), 50)
    self.model = model
    self.threads = threads
    self.runs = runs
    self.warmup = warmup
    let sorted = times.sorted()
    min_ms = sorted.first ?? 0
    p50_ms = Self.percentile(sorted, 50)
    p90_ms = Self.percentile(sorted, 90)
    max_ms = sorted.last ?? 0
    mean_ms = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
    peak_rss_bytes = peakRSS
  }

  /// Nearest rank: the smallest value with at least p% of the values at or below it.
  static func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(sorted.count, max(1, rank)) - 1]
  }

  var text: String {
    let ms = { (x: Double) in String(format: "%.3f ms", x) }
    if runs == 0 { return "\(model): loaded and ready to run in \(ms(load_ms)), \(threads) thread\(threads == 1 ? "" : "s")\n" }
    return """
      \(model): \(runs) runs after \(warmup) warm-up, \(threads) thread\(threads == 1 ? "" : "s")
      latency  min \(ms(min_ms))  p50 \(ms(p50_ms))  p90 \(ms(p90_ms))  max \(ms(max_ms))  mean \(ms(mean_ms))
      cpu time p50 \(ms(cpu_p50_ms)) per run (\(cpu_scope == .thread ? "of the running thread" : "all threads of the process"))
      peak memory  \(formatBytes(peak_rss_bytes)) (peak resident set size of the process)

      """
  }

  var json: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
  }
}

/// A duration in milliseconds.
func milliseconds(_ d: Duration) -> Double {
  Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
}

/// Whose CPU time a benchmark counts.
enum CPUScope: String, Encodable {
  /// The calling thread's.
  case thread
  /// The whole process's (all threads).
  case process
}

/// CPU time used so far by the calling thread or by the process, in milliseconds.
func cpuMilliseconds(_ scope: CPUScope) -> Double {
  var t = timespec()
  let clockID = scope == .thread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID
  guard clock_gettime(clockID, &t) == 0 else { return 0 }
  return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
}

/// The process's peak resident set size in bytes.
func peakResidentBytes() -> Int {
  var usage = rusage()
  #if canImport(Darwin)
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss)  // bytes on Apple platforms
  #else
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss) * 1024  // KiB on Linux
  #endif
}
