/// Branch-free float32 approximations of libm functions, written so that loops over them
/// vectorize (libm's scalar calls do not). Accuracy: a few ulp over the whole float range.
enum FastMath {
  /// eˣ, with Cephes' polynomial on the reduced argument: x = n·ln2 + r, |r| ≤ ln2/2. Inputs are
  /// clamped to [−87.3, 88.7]: underflow gives ≈ 1e-38, not 0, and overflow the largest finite float.
  @inline(__always)
  static func exp(_ x: Float) -> Float {
    let clamped = min(max(x, -87.33654), 88.72283)
    // Adding 1.5·2²³ rounds to the nearest integer n, kept in the low bits of the sum: no
    // float-to-int conversion (which checks its range, and would keep the loop scalar).
    let magic: Float = 12_582_912
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p: Float = 1.987_569_1e-4
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_5e-1
    p = p * r + 5.000_000_1e-1
    let er = p * r * r + r + 1
    // 2ⁿ from exponent bits, in two factors: n ∈ [−126, 128] after clamping and 2¹²⁸ overflows.
    let ni = Int32(bitPattern: shifted.bitPattern &- magic.bitPattern)
    let half = ni &>> 1
    let scaleA = Float(bitPattern: UInt32(bitPattern: (half &+ 127) &<< 23))
    let scaleB = Float(bitPattern: UInt32(bitPattern: (ni &- half &+ 127) &<< 23))
    return er * scaleA * scaleB
  }

  /// 1 / (1 + e⁻ˣ).
  @inline(__always)
  static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

  /// tanh, with Cephes' odd polynomial for |x| < 0.625 and 1 − 2/(e²ˣ + 1) beyond.
  @inline(__always)
  static func tanh(_ x: Float) -> Float {
    let a = abs(x)
    let z = x * x
    var p: Float = -5.704_988_7e-3
    p = p * z + 2.063_908_9e-2
    p = p * z - 5.373_971_6e-2
    p = p * z + 1.333_144_2e-1
    p = p * z - 3.333_328_2e-1
    let small = p * z * x + x
    let large = 1 - 2 / (exp(2 * a) + 1)
    return a < 0.625 ? small : (x < 0 ? -large : large)
  }

  /// Σ x[0..<count], in eight lanes (a scalar running sum cannot be vectorized: float addition
  /// does not reassociate).
  @inline(__always)
  static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
      lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
      i += 8
    }
    var total = lanes.sum()
    while i < count {
      total += x[i]
      i += 1
    }
    return total
  }

  /// max x[0..<count] (−∞ for none), in eight lanes.
  @inline(__always)
  static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= count {
      lanes = pointwiseMax(lanes, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
      i += 8
    }
    var m = lanes.max()
    while i < count {
      if x[i] > m { m = x[i] }
      i += 1
    }
    return m
  }
}
