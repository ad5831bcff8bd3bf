import Foundation
import Graph
import Runtime

/// How one output of model B differs from the same output of model A (the reference).
///
/// - max abs error: max |a − b| over the elements (NaN against NaN and an infinity against the same
///   infinity count as equal; NaN against a number, or an infinity against anything else, as ∞).
/// - max rel error: max abs error / max(max |a|, tiny), where max |a| is the largest finite
///   magnitude in A's output and tiny = 1.17549435e-38, the smallest normal float32. One number for
///   the whole output, relative to A's scale, so that elements near zero do not blow it up.
/// - cosine similarity: a·b / (|a| |b|), over all elements as float64 (1 when both are all zeros,
///   0 when only one is; nil when not finite).
/// - rel L2 error: ‖a − b‖ / ‖a‖ over all elements (‖a − b‖ itself when a is all zeros; nil when not
///   finite): the measure the factorization report's per-layer `output_error` uses.
/// - argmax agreement, for classifier-shaped outputs ([N, C] or [N, C, 1, 1], C > 1): in how many
///   of the N rows the index of the largest value is the same.
/// Float outputs pass when max rel error ≤ tolerance; integer and bool outputs must be equal.
struct OutputComparison {
  static let tiny = Double(Float.leastNormalMagnitude)

  let name: String
  let dtype: DType
  let shape: [Int]
  /// Why the outputs cannot be compared element by element (dtype or shape differ), if so.
  var problem: String?
  var maxAbsError: Double = 0
  var maxRelError: Double = 0
  var cosine: Double? = 1
  /// ‖a − b‖ and ‖a‖ (Euclidean, over all elements).
  var l2Error: Double = 0
  var l2Reference: Double = 0
  var relL2Error: Double? { l2Reference > 0 ? l2Error / l2Reference : l2Error }
  var argmaxMatches: Int?
  var argmaxRows: Int?
  /// Elements that differ at all.
  var differingElements = 0
  /// Integer and bool outputs must be equal.
  let exact: Bool
  var passed = false

  init(name: String, a: NDArray, b: NDArray, tolerance: Double) {
    self.name = name
    dtype = a.dtype
    shape = a.shape
    exact = !a.dtype.isFloatingPoint
    guard a.dtype == b.dtype else {
      problem = "dtype differs: A gives \(a.dtype), B gives \(b.dtype)"
      return
    }
    guard a.shape == b.shape else {
      problem = "shape differs: A gives \(shapeText(a.shape)), B gives \(shapeText(b.shape))"
      return
    }
    guard let x = Self.doubles(a), let y = Self.doubles(b) else {
      problem = "outputs of type \(a.dtype) cannot be compared"
      return
    }
    var maxA = 0.0
    var (dot, normA, normB, squaredDifference) = (0.0, 0.0, 0.0, 0.0)
    for i in x.indices {
      let (p, q) = (x[i], y[i])
      if p.isFinite { maxA = max(maxA, abs(p)) }
      dot += p * q
      normA += p * p
      normB += q * q
      let same = p == q || (p.isNaN && q.isNaN)
      if same { continue }
      squaredDifference += p.isFinite && q.isFinite ? (p - q) * (p - q) : .infinity
      differingElements += 1
      let d = p.isFinite && q.isFinite ? abs(p - q) : .infinity
      maxAbsError = max(maxAbsError, d)
    }
    if exact {  // float64 cannot tell every pair of int64 values apart: compare the elements' bytes
      let width = a.elementSize
      differingElements = a.withUnsafeBytes { p in
        b.withUnsafeBytes { q in
          stride(from: 0, to: p.count, by: width).filter { i in !(0..<width).allSatisfy { p[i + $0] == q[i + $0] } }.count
        }
      }
      if differingElements > 0 && maxAbsError == 0 { maxAbsError = 1 }
    }
    maxRelError = maxAbsError == 0 ? 0 : maxAbsError / max(maxA, Self.tiny)
    l2Error = squaredDifference.squareRoot()
    l2Reference = normA.squareRoot()
    if normA == 0 && normB == 0 {
      cosine = 1
    } else if normA == 0 || normB == 0 {
      cosine = 0
    } else {
      let c = dot / (normA.squareRoot() * normB.squareRoot())
      cosine = c.isFinite ? min(1, max(-1, c)) : nil
    }
    if let (rows, classes) = Self.classifierShape(a.shape) {
      argmaxRows = rows
      argmaxMatches = (0..<rows).filter { r in
        Self.argmax(x[r * classes..<(r + 1) * classes]) == Self.argmax(y[r * classes..<(r + 1) * classes])
      }.count
    }
    passed = exact ? differingElements == 0 : maxRelError <= tolerance
  }

  /// (N, C) for [N, C] and [N, C, 1, 1] with C > 1.
  static func classifierShape(_ shape: [Int]) -> (Int, Int)? {
    if shape.count == 2 && shape[1] > 1 { return (shape[0], shape[1]) }
    if shape.count == 4 && shape[1] > 1 && shape[2] == 1 && shape[3] == 1 { return (shape[0], shape[1]) }
    return nil
  }

  /// The index of the first largest value (NaN never wins).
  static func argmax(_ values: ArraySlice<Double>) -> Int {
    var best = values.startIndex
    for i in values.indices where values[i] > values[best] || values[best].isNaN { best = i }
    return best - values.startIndex
  }

  /// The elements as float64, for the dtypes the runtime produces.
  static func doubles(_ a: NDArray) -> [Double]? {
    switch a.dtype {
    case .float: return a.scalars(as: Float.self).map(Double.init)
    case .double: return a.scalars(as: Double.self)
    case .float16: return a.scalars(as: Half.self).map { Double($0.floatValue) }
    case .int8: return a.scalars(as: Int8.self).map(Double.init)
    case .int16: return a.scalars(as: Int16.self).map(Double.init)
    case .int32: return a.scalars(as: Int32.self).map(Double.init)
    case .int64: return a.scalars(as: Int64.self).map(Double.init)
    case .uint8: return a.scalars(as: UInt8.self).map(Double.init)
    case .uint16: return a.scalars(as: UInt16.self).map(Double.init)
    case .uint32: return a.scalars(as: UInt32.self).map(Double.init)
    case .uint64: return a.scalars(as: UInt64.self).map(Double.init)
    case .bool: return a.scalars(as: Bool.self).map { $0 ? 1 : 0 }
    default: return nil
    }
  }
}
