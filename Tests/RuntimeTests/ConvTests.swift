import Graph
import Testing

@testable import Runtime

/// A direct, obviously correct convolution for cross-checks: explicit pads only.
func referenceConv(
  _ x: NDArray, _ w: NDArray, _ b: NDArray?, group: Int, strides: [Int], dilations: [Int], pads: [Int]
) -> NDArray {
  let xs = x.scalars(as: Float.self)
  let ws = w.scalars(as: Float.self)
  let bs = b?.scalars(as: Float.self)
  let rank = x.rank - 2
  let (n, c, m) = (x.shape[0], x.shape[1], w.shape[0])
  let cg = c / group
  let mg = m / group
  let inS = Array(x.shape[2...])
  let kS = Array(w.shape[2...])
  var outS: [Int] = []
  for d in 0..<rank {
    let extent: Int = (kS[d] - 1) * dilations[d] + 1
    let padded: Int = inS[d] + pads[d] + pads[d + rank]
    outS.append((padded - extent) / strides[d] + 1)
  }
  let outCount = outS.reduce(1, *)
  let kCount = kS.reduce(1, *)
  let inCount = inS.reduce(1, *)
  var y = [Float](repeating: 0, count: n * m * outCount)
  func unravel(_ i: Int, _ shape: [Int]) -> [Int] {
    var r = [Int](repeating: 0, count: shape.count)
    var rest = i
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      r[d] = rest % shape[d]
      rest /= shape[d]
    }
    return r
  }
  for b in 0..<n {
    for oc in 0..<m {
      let g = oc / mg
      for o in 0..<outCount {
        let op = unravel(o, outS)
        var sum: Float = bs?[oc] ?? 0
        for ic in 0..<cg {
          for k in 0..<kCount {
            let kp = unravel(k, kS)
            var index = 0
            var inside = true
            for d in 0..<rank {
              let i = op[d] * strides[d] - pads[d] + kp[d] * dilations[d]
              if i < 0 || i >= inS[d] { inside = false }
              index = index * inS[d] + i
            }
            if inside {
              sum += xs[(b * c + g * cg + ic) * inCount + index] * ws[(oc * cg + ic) * kCount + k]
            }
          }
        }
        y[(b * m + oc) * outCount + o] = sum
      }
    }
  }
  return NDArray(y, shape: [n, m] + outS)
}

@Suite struct ConvTests {
  let x3 = iota([1, 1, 3, 3])  // 0 … 8

  @Test func valid2x2() throws {
    let y = try runFloat("Conv", [x3, NDArray([Float](repeating: 1, count: 4), shape: [1, 1, 2, 2])])
    expectClose(y, [8, 12, 20, 24], shape: [1, 1, 2, 2])
  }

  @Test func padsSumNeighbourhoods() throws {
    let w = NDArray([Float](repeating: 1, count: 9), shape: [1, 1, 3, 3])
    let y = try runFloat("Conv", [x3, w], attributes: [.ints("pads", [1, 1, 1, 1])])
    expectClose(y, [8, 15, 12, 21, 36, 27, 20, 33, 24], shape: [1, 1, 3, 3])
    let strided = try runFloat("Conv", [x3, w], attributes: [.ints("pads", [1, 1, 1, 1]), .ints("strides", [2, 2])])
    expectClose(strided, [8, 12, 20, 24], shape: [1, 1, 2, 2])
  }

  @Test func asymmetricPads() throws {
    // Pad only the top row and the right column: windows of a 2×2 ones kernel over a 4×4 padded plane.
    let w = NDArray([Float](repeating: 1, count: 4), shape: [1, 1, 2, 2])
    let y = try runFloat("Conv", [x3, w], attributes: [.ints("pads", [1, 0, 0, 1])])
    expectClose(y, [1, 3, 2, 8, 12, 7, 20, 24, 13], shape: [1, 1, 3, 3])
  }

  @Test func dilations() throws {
    // Taps at rows and columns 0, 2, 4 of 0 … 24: (0+2+4) + (10+12+14) + (20+22+24).
    let y = try runFloat(
      "Conv", [iota([1, 1, 5, 5]), NDArray([Float](repeating: 1, count: 9), shape: [1, 1, 3, 3])],
      attributes: [.ints("dilations", [2, 2])])
    expectClose(y, [108], shape: [1, 1, 1, 1])
  }

  @Test func biasAndMultipleOutputChannels() throws {
    let w = floats([1, 1, 1, 1, 1, 0, 0, -1], [2, 1, 2, 2])
    let y = try runFloat("Conv", [x3, w, floats([0.5, -1], [2])])
    expectClose(y, [8.5, 12.5, 20.5, 24.5, -5, -5, -5, -5], shape: [1, 2, 2, 2])
  }

  @Test func groupedNonDepthwise() throws {
    // Two groups of two channels: out0 = x0 + x1, out1 = x2 − x3.
    let y = try runFloat(
      "Conv", [floats([1, 2, 3, 4], [1, 4, 1, 1]), floats([1, 1, 1, -1], [2, 2, 1, 1])], attributes: [.int("group", 2)])
    expectClose(y, [3, -1], shape: [1, 2, 1, 1])
  }

  @Test func depthwise() throws {
    let x = floats([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2])
    let y = try runFloat("Conv", [x, floats([2, 3], [2, 1, 1, 1])], attributes: [.int("group", 2)])
    expectClose(y, [2, 4, 6, 8, 15, 18, 21, 24], shape: [1, 2, 2, 2])
  }

  @Test func depthwiseChannelMultiplier() throws {
    // One input channel, two filters: [1, 1] and [1, −1] over [1, 2, 3].
    let y = try runFloat("Conv", [floats([1, 2, 3], [1, 1, 1, 3]), floats([1, 1, 1, -1], [2, 1, 1, 2])])
    expectClose(y, [3, 5, -1, -1], shape: [1, 2, 1, 2])
  }

  @Test(arguments: [
    ("SAME_UPPER", [Float(6), 7]), ("SAME_LOWER", [3, 9]), ("VALID", [6]),
  ])
  func autoPad1D(mode: String, expected: [Float]) throws {
    // Width 4, kernel 3, stride 2: two outputs and one pad, at the end (upper) or the start (lower).
    let y = try runFloat(
      "Conv", [floats([1, 2, 3, 4], [1, 1, 4]), floats([1, 1, 1], [1, 1, 3])],
      attributes: [.string("auto_pad", mode), .ints("strides", [2])])
    expectClose(y, expected, shape: [1, 1, expected.count])
  }

  @Test func conv3D() throws {
    let y = try runFloat(
      "Conv", [iota([1, 1, 2, 2, 2]), NDArray([Float](repeating: 1, count: 8), shape: [1, 1, 2, 2, 2])])
    expectClose(y, [28], shape: [1, 1, 1, 1, 1])
  }

  @Test func emptyBatch() throws {
    let y = try runFloat(
      "Conv", [NDArray(zeros: .float, shape: [0, 1, 3, 3]), NDArray(zeros: .float, shape: [2, 1, 2, 2])])
    #expect(y.shape == [0, 2, 2, 2])
  }

  struct Case: Sendable, CustomTestStringConvertible {
    let x: [Int], w: [Int], group: Int, strides: [Int], dilations: [Int], pads: [Int], bias: Bool
    var testDescription: String { "x\(x) w\(w) g\(group) s\(strides) d\(dilations) p\(pads)" }
  }

  @Test(arguments: [
    Case(
      x: [2, 3, 7, 6], w: [4, 3, 3, 3], group: 1, strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], bias: true),
    Case(
      x: [1, 4, 9, 8], w: [6, 2, 3, 2], group: 2, strides: [2, 1], dilations: [1, 2], pads: [0, 1, 2, 0], bias: false),
    Case(
      x: [1, 3, 5, 5], w: [5, 3, 1, 1], group: 1, strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], bias: true),
    Case(
      x: [1, 3, 6, 6], w: [5, 3, 1, 1], group: 1, strides: [2, 2], dilations: [1, 1], pads: [0, 0, 0, 0], bias: false),
    Case(
      x: [2, 6, 9, 7], w: [6, 1, 3, 3], group: 6, strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1], bias: true),
    Case(
      x: [1, 3, 8, 8], w: [6, 1, 5, 3], group: 3, strides: [1, 3], dilations: [2, 1], pads: [3, 0, 1, 2], bias: false),
    Case(x: [1, 2, 11], w: [4, 2, 3], group: 1, strides: [2], dilations: [2], pads: [2, 1], bias: true),
    Case(x: [1, 4, 11], w: [4, 1, 3], group: 4, strides: [1], dilations: [1], pads: [1, 1], bias: true),
    Case(
      x: [1, 2, 4, 5, 3], w: [3, 2, 2, 3, 2], group: 1, strides: [1, 2, 1], dilations: [1, 1, 2],
      pads: [0, 1, 1, 1, 0, 0], bias: true),
  ])
  func matchesReference(_ c: Case) throws {
    let x = random(c.x, seed: 1)
    let w = random(c.w, seed: 2)
    let b = c.bias ? random([c.w[0]], seed: 3) : nil
    let y = try runFloat(
      "Conv", [x, w, b],
      attributes: [
        .int("group", c.group), .ints("strides", c.strides), .ints("dilations", c.dilations), .ints("pads", c.pads),
      ])
    expectClose(
      y, referenceConv(x, w, b, group: c.group, strides: c.strides, dilations: c.dilations, pads: c.pads),
      tolerance: 1e-5)
  }

  @Test func errorsNameTheNodeAndAttribute() {
    let w = NDArray(zeros: .float, shape: [1, 1, 2, 2])
    expectRuntimeError(containing: "node 'n' (Conv): attribute 'auto_pad': unsupported value 'FOO'") {
      _ = try runFloat("Conv", [x3, w], attributes: [.string("auto_pad", "FOO")])
    }
    expectRuntimeError(containing: "attribute 'kernel_shape'") {
      _ = try runFloat("Conv", [x3, w], attributes: [.ints("kernel_shape", [3, 3])])
    }
    expectRuntimeError(containing: "attribute 'bogus': is not supported") {
      _ = try runFloat("Conv", [x3, w], attributes: [.int("bogus", 1)])
    }
    expectRuntimeError(containing: "input 0 of type int64 is not supported") {
      _ = try runFloat("Conv", [NDArray([Int64](repeating: 0, count: 9), shape: [1, 1, 3, 3]), w])
    }
    expectRuntimeError(containing: "channels") {
      _ = try runFloat("Conv", [x3, NDArray(zeros: .float, shape: [1, 2, 2, 2])])
    }
  }
}
