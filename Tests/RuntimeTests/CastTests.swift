import Graph
import Testing

@testable import Runtime

@Suite struct CastTests {
  static func cast(_ x: NDArray, to dtype: DType, opset: Int = 13) throws -> NDArray {
    let y = try run("Cast", [x], attributes: [.int("to", Int(dtype.rawValue))], opset: opset)[0]
    #expect(y.dtype == (dtype == .float16 ? .float : dtype))
    #expect(y.shape == x.shape)
    return y
  }

  @Test func floatToIntegersTruncates() throws {
    let x = floats([2.9, -2.9, 0.5, -0.5, 7, -0.0], [6])
    #expect(try Self.cast(x, to: .int64).scalars(as: Int64.self) == [2, -2, 0, 0, 7, 0])
    #expect(try Self.cast(x, to: .int32).scalars(as: Int32.self) == [2, -2, 0, 0, 7, 0])
    #expect(try Self.cast(x, to: .int16).scalars(as: Int16.self) == [2, -2, 0, 0, 7, 0])
    #expect(try Self.cast(x, to: .int8).scalars(as: Int8.self) == [2, -2, 0, 0, 7, 0])
    #expect(try Self.cast(NDArray([2.9, -2.9], shape: [2]), to: .int64).scalars(as: Int64.self) == [2, -2])
    // Beyond the target's range: low bits of the int32 (or int64) conversion, as onnxruntime on x86-64.
    let wide = floats([300.7, -300.7, -3.7, 255.9, 65_536 + 3], [5])
    #expect(try Self.cast(wide, to: .int8).scalars(as: Int8.self) == [44, -44, -3, -1, 3])
    #expect(try Self.cast(wide, to: .uint8).scalars(as: UInt8.self) == [44, 212, 253, 255, 3])
    #expect(try Self.cast(wide, to: .uint16).scalars(as: UInt16.self) == [300, 65236, 65533, 255, 3])
    #expect(
      try Self.cast(wide, to: .uint32).scalars(as: UInt32.self) == [300, 4_294_966_996, 4_294_967_293, 255, 65539])
    #expect(
      try Self.cast(floats([-300.7, 3e9, 1e19], [3]), to: .uint64).scalars(as: UInt64.self) == [
        18_446_744_073_709_551_316, 3_000_000_000, 9_999_999_980_506_447_872,
      ])
    // NaN and out-of-range values: the intermediate's minimum (x86's "integer indefinite").
    let odd = floats([.nan, .infinity, -.infinity, 1e20, 3e9], [5])
    #expect(try Self.cast(odd, to: .int32).scalars(as: Int32.self) == [.min, .min, .min, .min, .min])
    #expect(try Self.cast(odd, to: .int64).scalars(as: Int64.self) == [.min, .min, .min, .min, 3_000_000_000])
    #expect(try Self.cast(odd, to: .int8).scalars(as: Int8.self) == [0, 0, 0, 0, 0])
  }

  @Test func integerConversionsWrap() throws {
    let x = NDArray([Int64(200), -129, 256, -1, 70000], shape: [5])
    #expect(try Self.cast(x, to: .int8).scalars(as: Int8.self) == [-56, 127, 0, -1, 112])
    #expect(try Self.cast(x, to: .uint8).scalars(as: UInt8.self) == [200, 127, 0, 255, 112])
    #expect(try Self.cast(x, to: .int16).scalars(as: Int16.self) == [200, -129, 256, -1, 4464])
    #expect(try Self.cast(x, to: .uint64).scalars(as: UInt64.self) == [200, UInt64.max - 128, 256, .max, 70000])
    #expect(try Self.cast(x, to: .int32).scalars(as: Int32.self) == [200, -129, 256, -1, 70000])
    let u = NDArray([UInt64.max, 5], shape: [2])
    #expect(try Self.cast(u, to: .int64).scalars(as: Int64.self) == [-1, 5])
    #expect(try Self.cast(u, to: .float).scalars(as: Float.self) == [0x1p64, 5])
    #expect(try Self.cast(NDArray([UInt8(255)], shape: [1]), to: .int32).scalars(as: Int32.self) == [255])
    #expect(try Self.cast(NDArray([Int8(-1)], shape: [1]), to: .uint16).scalars(as: UInt16.self) == [65535])
    // Integers to floats round to nearest even.
    let big = NDArray([Int64(16_777_217), 16_777_219, -3], shape: [3])
    #expect(try Self.cast(big, to: .float).scalars(as: Float.self) == [16_777_216, 16_777_220, -3])
    #expect(try Self.cast(big, to: .double).scalars(as: Double.self) == [16_777_217, 16_777_219, -3])
  }

  @Test func boolsAndFloats() throws {
    let f = floats([0, -0.0, 0.5, .nan, -3], [5])
    #expect(try Self.cast(f, to: .bool).scalars(as: Bool.self) == [false, false, true, true, true])
    #expect(
      try Self.cast(NDArray([Int64(0), 2, -1], shape: [3]), to: .bool).scalars(as: Bool.self) == [false, true, true])
    let b = NDArray([true, false], shape: [2])
    #expect(try Self.cast(b, to: .float).scalars(as: Float.self) == [1, 0])
    #expect(try Self.cast(b, to: .int64).scalars(as: Int64.self) == [1, 0])
    #expect(try Self.cast(b, to: .double).scalars(as: Double.self) == [1, 0])
    #expect(try Self.cast(b, to: .uint8).scalars(as: UInt8.self) == [1, 0])
    #expect(try Self.cast(b, to: .bool).scalars(as: Bool.self) == [true, false])
    let d = NDArray([1e300, 0.1, -2.5], shape: [3])
    #expect(try Self.cast(d, to: .float).scalars(as: Float.self) == [.infinity, 0.1, -2.5])
    #expect(try Self.cast(floats([0.1], [1]), to: .double).scalars(as: Double.self) == [Double(Float(0.1))])
    // Same type: the input itself.
    #expect(
      try Self.cast(f, to: .float).scalars(as: Float.self).map(\.bitPattern)
        == f.scalars(as: Float.self).map(\.bitPattern))
    #expect(try Self.cast(floats([], [0, 2]), to: .int64).count == 0)
    #expect(try Self.cast(NDArray(scalar: Int32(7)), to: .float).scalars(as: Float.self) == [7])
  }

  @Test func castToFloat16RoundsThroughHalf() throws {
    let x = floats(
      [1 + 1.0 / 2048, 1 + 3.0 / 2048, 65519, 65520, 1e-8, 1e-7, -2.5, 0.1, -.infinity, 70000], [10])
    let y = try Self.cast(x, to: .float16)
    #expect(y.dtype == .float)
    #expect(
      y.scalars(as: Float.self) == [
        1, 1.001953125, 65504, .infinity, 0, 1.1920929e-7, -2.5, 0.099975586, -.infinity, .infinity,
      ])
    #expect(try Self.cast(floats([.nan], [1]), to: .float16).scalars(as: Float.self)[0].isNaN)
    // Integers round too: 2049 is halfway between 2048 and 2050.
    #expect(
      try Self.cast(NDArray([Int64(2049), 2051], shape: [2]), to: .float16).scalars(as: Float.self) == [2048, 2052])
    #expect(try Self.cast(NDArray([0.1], shape: [1]), to: .float16).scalars(as: Float.self) == [0.099975586])
  }

  @Test func halfRoundingMatchesHalf() {
    // A sweep of bit patterns across every exponent, plus the boundaries.
    var patterns: [UInt32] = [0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x477f_efff, 0x477f_f000]
    var bits: UInt32 = 1
    while bits < 0x7f80_0000 {
      patterns.append(bits)
      patterns.append(bits | 0x8000_0000)
      bits &+= 20_011  // about 250 per exponent
    }
    for exponent: UInt32 in 100...143 {
      for low: UInt32 in [0xfff, 0x1000, 0x1001, 0x2fff, 0x3000, 0x3001, 0x7f_ffff] {
        patterns.append(exponent << 23 | low)
      }
    }
    for p in patterns {
      let x = Float(bitPattern: p)
      let expected = Half(x).floatValue
      let actual = Cast.roundedToHalf(x)
      #expect(
        actual.bitPattern == expected.bitPattern || (actual.isNaN && expected.isNaN),
        "\(x) (0x\(String(p, radix: 16))): \(actual) vs \(expected)")
    }
  }

  @Test func float16GraphOutputsComeBackAsFloat16() throws {
    var g = Graph()
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.value(3)]))
    let n = try g.addNode(
      opType: "Cast", inputs: [x], outputs: ["y"], attributes: [.int("to", Int(DType.float16.rawValue))])
    let y = g[n].outputs[0]!
    g.addOutput(y)
    g.updateValue(y) { $0.type = .tensor(.float16, shape: [.value(3)]) }
    // And a float16 input cast back to float.
    let h = try g.addInput(name: "h", type: .tensor(.float16, shape: [.value(2)]))
    let m = try g.addNode(opType: "Cast", inputs: [h], outputs: ["z"], attributes: [.int("to", 1)])
    g.addOutput(g[m].outputs[0]!)
    let session = try Session(graph: g, opset: 19, options: SessionOptions(threadCount: 1))
    let halves = NDArray([Half(0.5), Half(-65504)], shape: [2])
    let out = try session.run(["x": floats([1 + 1.0 / 2048, 0.1, 1e5], [3]), "h": halves])
    #expect(out["y"]!.dtype == .float16)
    #expect(out["y"]!.scalars(as: Half.self).map(\.bitPattern) == [0x3c00, Half(0.1).bitPattern, 0x7c00])
    #expect(out["z"]!.dtype == .float && out["z"]!.scalars(as: Float.self) == [0.5, -65504])
  }

  @Test func castLike() throws {
    let x = floats([2.7, -1.5, 1 + 1.0 / 2048], [3])
    let i = try run("CastLike", [x, NDArray([Int32](), shape: [0])], opset: 15)[0]
    #expect(i.dtype == .int32 && i.scalars(as: Int32.self) == [2, -1, 1])
    #expect(
      try run("CastLike", [x, NDArray([true], shape: [1])], opset: 15)[0].scalars(as: Bool.self) == [true, true, true])
    // A float16 target, known from its constant (which the runtime holds as float32).
    let half = Tensor(dtype: .float16, shape: [1], storage: .copying([Half(1).bitPattern]))!
    let rounded = try run("CastLike", [x, nil], constants: [1: try NDArray(half)], opset: 15)[0]
    #expect(rounded.dtype == .float && rounded.scalars(as: Float.self) == [2.69921875, -1.5, 1])
    // Or from its declared type.
    var g = Graph()
    let a = try g.addInput(name: "a", type: .tensor(.float, shape: [.value(3)]))
    let b = try g.addInput(name: "b", type: .tensor(.float16, shape: [.value(1)]))
    let n = try g.addNode(opType: "CastLike", inputs: [a, b], outputs: ["y"])
    g.addOutput(g[n].outputs[0]!)
    let session = try Session(graph: g, opset: 15, options: SessionOptions(threadCount: 1))
    let y = try session.run(["a": x, "b": NDArray([Half(0)], shape: [1])])["y"]!
    #expect(y.scalars(as: Float.self) == [2.69921875, -1.5, 1])
    expectRuntimeError(containing: "input 1 of type bfloat16 is not supported") {
      _ = try run("CastLike", [x, NDArray(zeros: .bfloat16, shape: [2])], opset: 15)
    }
  }

  @Test func unsupportedTargets() throws {
    for (dtype, name) in [(DType.string, "string"), (.bfloat16, "bfloat16"), (.float8e4m3fn, "float8e4m3fn")] {
      expectRuntimeError(containing: "attribute 'to': casting to \(name) is not supported") {
        _ = try run("Cast", [floats([1], [1])], attributes: [.int("to", Int(dtype.rawValue))])
      }
    }
    expectRuntimeError(containing: "attribute 'to': is required") {
      _ = try run("Cast", [floats([1], [1])])
    }
    // saturate (opset 19) only concerns float8 and is accepted.
    let y = try run("Cast", [floats([1.5], [1])], attributes: [.int("to", 7), .int("saturate", 0)], opset: 19)[0]
    #expect(y.scalars(as: Int64.self) == [1])
  }
}
