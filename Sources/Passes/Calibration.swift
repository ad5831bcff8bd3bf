import Graph
import Runtime

/// The data approximate passes fit on, and the error budget they answer to.
///
/// `samples` are fed one at a time (each a full set of feeds); a quarter of them (at least one,
/// when there are two or more) are held back to measure errors and choose regularization, the
/// rest are fitted on. The CLI builds it from `--calibration data.npz` or
/// `--calibration-random N` (see `Sources/rebirth/CalibrationData.swift`).
public struct Calibration: Sendable {
  public let fitting: [[String: NDArray]]
  public let heldOut: [[String: NDArray]]
  /// Whether `heldOut` is disjoint from `fitting` (false with a single sample, which serves as both).
  public let heldOutIsDisjoint: Bool
  /// Whether the samples are random numbers rather than real data (fits on them are poor; the
  /// report says so).
  public let isRandom: Bool
  /// Where the samples came from, for the report: "data.npz (64 samples)".
  public let source: String

  public init(samples: [[String: NDArray]], isRandom: Bool, source: String) {
    let held = samples.count >= 2 ? max(1, samples.count / 4) : 0
    fitting = Array(samples.dropLast(held))
    heldOut = held > 0 ? Array(samples.suffix(held)) : samples
    heldOutIsDisjoint = held > 0
    self.isRandom = isRandom
    self.source = source
  }

  /// The values named `names` (any value of the graph: layer inputs and outputs), computed by
  /// `model` on each sample of `set`: result[sample][name index].
  public func activations(
    of names: [String], in model: Model, on set: [[String: NDArray]], threads: Int = 1
  ) throws -> [[NDArray]] {
    let session = try Session(model: model, options: SessionOptions(threadCount: threads))
    var result: [[NDArray]] = []
    result.reserveCapacity(set.count)
    for feeds in set { result.append(try session.run(feeds, fetching: names)) }
    return result
  }

  /// The relative output error of `candidate` against `reference` on the held-out samples: over
  /// every float output and sample, the largest max |a − b| / max |a|.
  public func outputError(of candidate: Model, against reference: Model, threads: Int = 1) throws -> Double {
    let options = SessionOptions(threadCount: threads)
    let a = try Session(model: reference, options: options), b = try Session(model: candidate, options: options)
    var worst = 0.0
    for feeds in heldOut {
      let expected = try a.run(feeds), got = try b.run(feeds)
      for (name, x) in expected {
        guard let y = got[name] else { return .infinity }
        worst = max(worst, relativeError(x, y))
      }
    }
    return worst
  }
}

/// max |a − b| / max |a| over float32 arrays (0 for other dtypes when equal, ∞ when the shapes
/// differ or values are not float32 and differ).
public func relativeError(_ a: NDArray, _ b: NDArray) -> Double {
  guard a.shape == b.shape else { return .infinity }
  guard a.dtype == .float, b.dtype == .float else { return a.dtype == b.dtype ? 0 : .infinity }
  let x = a.scalars(as: Float.self), y = b.scalars(as: Float.self)
  var scale = 0.0, difference = 0.0
  for i in x.indices {
    let p = Double(x[i]), q = Double(y[i])
    guard p.isFinite else { continue }
    scale = max(scale, abs(p))
    difference = max(difference, abs(p - q))
  }
  return scale > 0 ? difference / scale : difference
}

/// What the approximate passes are told by the command line.
public struct ApproximationSettings: Sendable {
  /// Calibration samples; nil when the user gave none (weight-only fitting).
  public var calibration: Calibration?
  /// `--max-error E`: the relative output error the model may reach (on held-out samples).
  public var maxError: Double?
  /// `--compression R`: the fraction of the eligible layers' parameters to keep (factorization).
  public var compression: Double?
  /// `--min-params N`: layers with fewer parameters are left alone.
  public var minParams: Int = 4096
  /// Ranks are rounded to a multiple of this where it helps the kernels.
  public var rankMultiple: Int = 8
  /// Threads for calibration runs and BLAS.
  public var threads: Int = 1

  public init() {}
}
