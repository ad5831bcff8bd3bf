import Graph
import Testing

@testable import Runtime

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@Suite struct MathTests {
  /// Distance from `expected` in its ulps.
  static func ulps(_ actual: Float, _ expected: Double) -> Float {
    let e = Float(expected)
    if actual == e || (actual.isNaN && e.isNaN) { return 0 }
    return abs(actual - e) / max(e.ulp, Float.leastNonzeroMagnitude)
  }

  static func int64s(_ x: NDArray) -> [Int64] { x.scalars(as: Int64.self) }

  // MARK: Vectorized functions against libm

  @Test func vectorExpMatchesLibm() {
    var worst: Float = 0
    var at: Float = 0
    for i in 0...400_000 {
      let x = Float(i) * 0.0005 - 110
      let u = Self.ulps(ElementMath.exp(x), exp(Double(x)))
      if u > worst { (worst, at) = (u, x) }
    }
    // Subnormal results keep their absolute accuracy only.
    #expect(worst <= 4 || at < -87, "worst \(worst) ulp at \(at)")
    for i in 0...1000 {
      let x = -87.3 - Float(i) * 0.0165
      #expect(abs(ElementMath.exp(x) - Float(exp(Double(x)))) <= 4 * Float.leastNonzeroMagnitude)
    }
    #expect(ElementMath.exp(89) == .infinity)
    #expect(ElementMath.exp(.infinity) == .infinity)
    #expect(ElementMath.exp(-.infinity) == 0)
    #expect(ElementMath.exp(-120) == 0)
    #expect(ElementMath.exp(.nan).isNaN)
    #expect(ElementMath.exp(0) == 1)
  }

  @Test func vectorLogMatchesLibm() {
    var worst: Float = 0
    var at: Float = 0
    var x: Float = 1e-45
    while x < 3e38 {
      for v in [x, x * 1.1, x * 1.37, x * 1.9] {
        let u = Self.ulps(ElementMath.log(v), log(Double(v)))
        if u > worst { (worst, at) = (u, v) }
      }
      x *= 2.03
    }
    for i in 1...100_000 {
      let v = Float(i) * 0.00004 + 0.5
      let u = Self.ulps(ElementMath.log(v), log(Double(v)))
      if u > worst { (worst, at) = (u, v) }
    }
    #expect(worst <= 2, "worst \(worst) ulp at \(at)")
    #expect(ElementMath.log(1) == 0)
    #expect(ElementMath.log(0) == -.infinity)
    #expect(ElementMath.log(-0.0) == -.infinity)
    #expect(ElementMath.log(.infinity) == .infinity)
    #expect(ElementMath.log(-1).isNaN)
    #expect(ElementMath.log(-.infinity).isNaN)
    #expect(ElementMath.log(.nan).isNaN)
  }

  @Test func vectorErfMatchesLibm() {
    var worst: Float = 0
    var at: Float = 0
    for i in 0...240_000 {
      let x = Float(i) * 0.00005 - 6
      let error = abs(ElementMath.erf(x) - Float(erf(Double(x))))
      if error > worst { (worst, at) = (error, x) }
    }
    #expect(worst <= 1.2e-7, "worst \(worst) at \(at)")
    // Relative accuracy near 0.
    for x: Float in [1e-30, 1e-10, 3e-5, 0.01] {
      #expect(Self.ulps(ElementMath.erf(x), erf(Double(x))) <= 2)
      #expect(ElementMath.erf(-x) == -ElementMath.erf(x))
    }
    #expect(ElementMath.erf(.infinity) == 1)
    #expect(ElementMath.erf(-.infinity) == -1)
    #expect(ElementMath.erf(.nan).isNaN)
    #expect(ElementMath.erf(-0.0).sign == .minus)
  }

  // MARK: Unary maps

  @Test func expLogSqrtErf() throws {
    expectClose(
      try runFloat("Exp", [floats([0, 1, -1, 2.5, -20, 80], [2, 3])]),
      [1, 2.7182817, 0.36787945, 12.182494, 2.0611537e-09, 5.5406225e+34], shape: [2, 3], tolerance: 2e-7)
    let e = try runFloat("Exp", [floats([100, -200, .nan], [3])]).scalars(as: Float.self)
    #expect(e[0] == .infinity && e[1] == 0 && e[2].isNaN)
    expectClose(
      try runFloat("Log", [floats([1, 2, 0.5, 10, 1e-3, 1e30], [6])]),
      [0, 0.6931472, -0.6931472, 2.3025851, -6.9077554, 69.077553], shape: [6], tolerance: 2e-7)
    let l = try runFloat("Log", [floats([0, -1], [2])]).scalars(as: Float.self)
    #expect(l[0] == -.infinity && l[1].isNaN)
    expectClose(try runFloat("Sqrt", [floats([0, 1, 2, 9, 0.25], [5])]), [0, 1, 1.4142135, 3, 0.5], shape: [5])
    #expect(try runFloat("Sqrt", [floats([-1], [1])]).scalars(as: Float.self)[0].isNaN)
    expectClose(
      try runFloat("Erf", [floats([-2, -0.5, 0, 0.1, 0.5, 1, 3, 5], [8])]),
      [-0.9953223, -0.5204999, 0, 0.11246292, 0.5204999, 0.8427008, 0.9999779, 1], shape: [8], tolerance: 2e-7)
    // Empty and rank-0 inputs.
    #expect(try runFloat("Exp", [floats([], [0, 3])]).shape == [0, 3])
    expectClose(try runFloat("Sqrt", [NDArray(scalar: Float(16))]), [4], shape: [])
    expectRuntimeError(containing: "input 0 of type int64 is not supported") {
      _ = try runFloat("Exp", [NDArray([Int64(1)], shape: [1])])
    }
  }

  @Test func hardSigmoidAndHardSwish() throws {
    let x = floats([-3, 0, 1, 3, -4, 4], [6])
    expectClose(try runFloat("HardSigmoid", [x]), [0, 0.5, 0.7, 1, 0, 1], shape: [6])
    expectClose(
      try runFloat("HardSigmoid", [x], attributes: [.float("alpha", 0.5), .float("beta", 0.1)]),
      [0, 0.1, 0.6, 1, 0, 1], shape: [6])
    #expect(try runFloat("HardSigmoid", [floats([.nan], [1])]).scalars(as: Float.self)[0].isNaN)
    // x · clip(x/6 + 1/2, 0, 1)
    expectClose(
      try runFloat("HardSwish", [floats([-4, -3, -1, 0, 1, 3, 4, 0.5], [8])], opset: 14),
      [0, 0, -1.0 / 3, 0, 2.0 / 3, 3, 4, 0.5 * (0.5 / 6 + 0.5)], shape: [8])
  }

  @Test func gelu() throws {
    let x = floats([-3, -1, -0.5, 0, 0.5, 1, 2, 10, -10], [9])
    expectClose(
      try runFloat("Gelu", [x], opset: 20),
      [-0.0040496942, -0.15865526, -0.15426877, 0, 0.34573123, 0.84134477, 1.9544997, 10, 0], shape: [9],
      tolerance: 3e-7)
    expectClose(
      try runFloat("Gelu", [x], attributes: [.string("approximate", "tanh")], opset: 20),
      [-0.003637392, -0.15880801, -0.154286, 0, 0.345714, 0.841192, 1.9545977, 10, 0], shape: [9],
      tolerance: 1e-6)
    expectRuntimeError(containing: "attribute 'approximate': unsupported value 'fast'") {
      _ = try runFloat("Gelu", [x], attributes: [.string("approximate", "fast")], opset: 20)
    }
  }

  // MARK: Neg, Abs

  @Test func negAndAbs() throws {
    expectClose(try runFloat("Neg", [floats([1, -2, 0], [3])]), [-1, 2, 0], shape: [3])
    let magnitudes = try runFloat("Abs", [floats([1, -2, -0.0, -.infinity], [4])]).scalars(as: Float.self)
    #expect(magnitudes == [1, 2, 0, .infinity] && magnitudes[2].sign == .plus)
    let i64 = NDArray([Int64.min, -5, 7], shape: [3])
    #expect(Self.int64s(try run("Neg", [i64])[0]) == [Int64.min, 5, -7])
    #expect(Self.int64s(try run("Abs", [i64])[0]) == [Int64.min, 5, 7])
    let i32 = NDArray([Int32(-3), 4], shape: [2])
    #expect(try run("Abs", [i32])[0].scalars(as: Int32.self) == [3, 4])
    #expect(try run("Neg", [i32])[0].scalars(as: Int32.self) == [3, -4])
    #expect(try run("Neg", [NDArray([Int8(-128), 5], shape: [2])])[0].scalars(as: Int8.self) == [-128, -5])
    #expect(try run("Abs", [NDArray([-2.5], shape: [1])])[0].scalars(as: Double.self) == [2.5])
    #expect(try run("Abs", [NDArray([UInt8(200)], shape: [1])])[0].scalars(as: UInt8.self) == [200])
    expectRuntimeError(containing: "input 0 of type uint8 is not supported") {
      _ = try run("Neg", [NDArray([UInt8(2)], shape: [1])])
    }
    #expect(try run("Abs", [NDArray([Int64](), shape: [0])])[0].shape == [0])
  }

  // MARK: PRelu

  @Test func preluBroadcastsSlopeToInput() throws {
    // Slope [2, 1, 1] over X [1, 2, 2, 2] (per channel).
    let x = floats([-1, 2, -3, 4, -5, 6, -7, 8], [1, 2, 2, 2])
    let slope = floats([0.1, 0.5], [2, 1, 1])
    expectClose(try runFloat("PRelu", [x, slope]), [-0.1, 2, -0.3, 4, -2.5, 6, -3.5, 8], shape: [1, 2, 2, 2])
    expectClose(try runFloat("PRelu", [x, floats([2], [1])]), [-2, 2, -6, 4, -10, 6, -14, 8], shape: [1, 2, 2, 2])
    // Slope along the last axis, as a constant.
    expectClose(
      try runFloat("PRelu", [x, nil], constants: [1: floats([1, 0], [2])]), [-1, 2, -3, 4, -5, 6, -7, 8],
      shape: [1, 2, 2, 2])
    let ints = try run("PRelu", [NDArray([Int64(-3), 2], shape: [2]), NDArray([Int64(2)], shape: [])])[0]
    #expect(Self.int64s(ints) == [-6, 2])
    expectRuntimeError(containing: "slope of shape [3] does not broadcast to the input's [2, 2]") {
      _ = try runFloat("PRelu", [floats([1, 2, 3, 4], [2, 2]), floats([1, 2, 3], [3])])
    }
    // Unidirectional: the slope may not grow X.
    expectRuntimeError(containing: "does not broadcast") {
      _ = try runFloat("PRelu", [floats([1, 2], [2]), floats([1, 2, 3, 4], [2, 2])])
    }
    #expect(try runFloat("PRelu", [floats([], [0, 2]), floats([1, 1], [2])]).shape == [0, 2])
  }

  // MARK: Pow

  @Test func powFloat() throws {
    let x = floats([1, 2, 3], [3])
    expectClose(try runFloat("Pow", [x, floats([2], [])]), [1, 4, 9], shape: [3])
    expectClose(try runFloat("Pow", [x, floats([3], [1])]), [1, 8, 27], shape: [3])
    expectClose(try runFloat("Pow", [x, floats([-1], [])]), [1, 0.5, 1.0 / 3], shape: [3])
    expectClose(try runFloat("Pow", [x, floats([0], [])]), [1, 1, 1], shape: [3])
    expectClose(try runFloat("Pow", [floats([4, 9], [2]), floats([1.5], [])]), [8, 27], shape: [2])
    // pow's special cases with exponent ½.
    let half = try runFloat("Pow", [floats([4, -0.0, -.infinity, -1], [4]), floats([0.5], [])]).scalars(as: Float.self)
    #expect(half[0] == 2 && half[1] == 0 && half[1].sign == .plus && half[2] == .infinity && half[3].isNaN)
    // Broadcast both ways.
    expectClose(
      try runFloat("Pow", [x, floats([1, 2], [2, 1])]), [1, 2, 3, 1, 4, 9], shape: [2, 3])
    // Integer exponents with a float base.
    expectClose(try runFloat("Pow", [x, NDArray([Int64(2)], shape: [1])]), [1, 4, 9], shape: [3])
    expectClose(
      try runFloat("Pow", [floats([-8, 2.5], [2]), NDArray([Int32(3), -2], shape: [2])]), [-512, 0.16], shape: [2])
    let roots = try run("Pow", [NDArray([2.0, 3.0], shape: [2]), NDArray([0.5], shape: [1])])[0]
    #expect(roots.scalars(as: Double.self) == [Double(2).squareRoot(), Double(3).squareRoot()])
  }

  @Test func powIntegers() throws {
    let base = NDArray([Int64(2), -2, 3, 0, 1, -1, 5], shape: [7])
    // Negative exponents truncate 1/xⁿ; 0⁻ⁿ gives the minimum (as onnxruntime).
    let negative = try run("Pow", [base, NDArray([Int64(-1), -1, -2, -1, -3, -3, 2], shape: [7])])[0]
    #expect(Self.int64s(negative) == [0, 0, 0, .min, 1, -1, 25])
    let big = try run("Pow", [NDArray([Int64(2), 3], shape: [2]), NDArray([Int64(70), 39], shape: [2])])[0]
    #expect(Self.int64s(big) == [.min, 4_052_555_153_018_976_267])
    let narrow = try run("Pow", [NDArray([Int32(2), 3], shape: [2]), NDArray([Int64(40), 2], shape: [2])])[0]
    #expect(narrow.dtype == .int32 && narrow.scalars(as: Int32.self) == [.min, 9])
    // Floating-point exponents: through double, truncated.
    let mixed = try run("Pow", [base, floats([0.5, 1.5, 1.5, 0.5, 2.5, 2, 0.3], [7])])[0]
    #expect(Self.int64s(mixed) == [1, .min, 5, 0, 1, 1, 1])
    expectRuntimeError(containing: "input 1 of type bool is not supported") {
      _ = try run("Pow", [base, NDArray([true], shape: [1])])
    }
  }

  // MARK: Min, Max, Sum, Mean

  @Test func variadicMinMaxSumMean() throws {
    let a = floats([1, 5], [2, 1])
    let b = floats([2, 4, 6], [3])
    let c = floats([3], [])
    expectClose(try runFloat("Max", [a, b, c]), [3, 4, 6, 5, 5, 6], shape: [2, 3])
    expectClose(try runFloat("Min", [a, b, c]), [1, 1, 1, 2, 3, 3], shape: [2, 3])
    expectClose(try runFloat("Sum", [a, b, c]), [6, 8, 10, 10, 12, 14], shape: [2, 3])
    expectClose(try runFloat("Mean", [a, b, c]), [2, 8.0 / 3, 10.0 / 3, 10.0 / 3, 4, 14.0 / 3], shape: [2, 3])
    // One input is returned as it is.
    expectClose(try runFloat("Sum", [b]), [2, 4, 6], shape: [3])
    expectClose(try runFloat("Max", [b]), [2, 4, 6], shape: [3])
    expectClose(try runFloat("Mean", [b]), [2, 4, 6], shape: [3])
    // NaN wins either way.
    let nan = try runFloat("Max", [floats([1, .nan], [2]), floats([.nan, 2], [2])]).scalars(as: Float.self)
    #expect(nan[0].isNaN && nan[1].isNaN)
    let nanMin = try runFloat("Min", [floats([1, .nan], [2]), floats([.nan, 2], [2])]).scalars(as: Float.self)
    #expect(nanMin[0].isNaN && nanMin[1].isNaN)
    // Integers; sums wrap.
    let ints = [NDArray([Int64.max, 3], shape: [2]), NDArray([Int64(1)], shape: [1])]
    #expect(Self.int64s(try run("Sum", ints)[0]) == [.min, 4])
    #expect(Self.int64s(try run("Max", ints)[0]) == [.max, 3])
    #expect(Self.int64s(try run("Min", ints)[0]) == [1, 1])
    #expect(
      try run("Max", [NDArray([Int32(-1), 7], shape: [2]), NDArray([Int32(0)], shape: [])])[0].scalars(as: Int32.self)
        == [0, 7])
    expectRuntimeError(containing: "inputs have different types float and int64") {
      _ = try run("Sum", [floats([1], [1]), NDArray([Int64(1)], shape: [1])])
    }
    expectRuntimeError(containing: "cannot broadcast [2] with [3]") {
      _ = try run("Min", [floats([1, 2], [2]), b])
    }
    expectRuntimeError(containing: "input 0 of type int64 is not supported") {
      _ = try run("Mean", ints)
    }
    #expect(try runFloat("Sum", [floats([], [0, 3]), b]).shape == [0, 3])
  }
}
