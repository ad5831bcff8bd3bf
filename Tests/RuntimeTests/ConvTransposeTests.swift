import Graph
import Testing

@testable import Runtime

/// A direct transposed convolution for cross-checks: every input element scattered through every
/// kernel tap, explicit begin pads and output extents.
private func referenceConvTranspose(
  _ x: NDArray, _ w: NDArray, _ b: NDArray?, group: Int, strides: [Int], dilations: [Int], padsBegin: [Int],
  output: [Int]
) -> NDArray {
  let xs = x.scalars(as: Float.self)
  let ws = w.scalars(as: Float.self)
  let rank = x.rank - 2
  let (n, c, mg) = (x.shape[0], x.shape[1], w.shape[1])
  let (cg, m) = (c / group, mg * group)
  let inS = Array(x.shape[2...])
  let kS = Array(w.shape[2...])
  let (inCount, kCount, outCount) = (inS.reduce(1, *), kS.reduce(1, *), output.reduce(1, *))
  var y = [Float](repeating: 0, count: n * m * outCount)
  if let b {
    let bs = b.scalars(as: Float.self)
    for i in 0..<(n * m) { for o in 0..<outCount { y[i * outCount + o] = bs[i % m] } }
  }
  func unravel(_ i: Int, _ shape: [Int]) -> [Int] {
    var r = [Int](repeating: 0, count: shape.count)
    var rest = i
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      r[d] = rest % shape[d]
      rest /= shape[d]
    }
    return r
  }
  for image in 0..<n {
    for ic in 0..<c {
      let g = ic / cg
      for p in 0..<inCount {
        let ip = unravel(p, inS)
        for k in 0..<kCount {
          let kp = unravel(k, kS)
          var index = 0
          var inside = true
          for d in 0..<rank {
            let o = ip[d] * strides[d] - padsBegin[d] + kp[d] * dilations[d]
            if o < 0 || o >= output[d] { inside = false }
            index = index * output[d] + o
          }
          guard inside else { continue }
          for om in 0..<mg {
            let oc = g * mg + om
            y[(image * m + oc) * outCount + index] +=
              xs[(image * c + ic) * inCount + p] * ws[(ic * mg + om) * kCount + k]
          }
        }
      }
    }
  }
  return NDArray(y, shape: [n, m] + output)
}

@Suite struct ConvTransposeTests {
  // 1-D: x = [1, 2, 3] through w = [1, 10, 100] at stride 2 scatters to positions 2i … 2i+2.
  let x1 = floats([1, 2, 3], [1, 1, 3])
  let w1 = floats([1, 10, 100], [1, 1, 3])

  @Test func stride2() throws {
    let y = try runFloat("ConvTranspose", [x1, w1], attributes: [.ints("strides", [2])])
    expectClose(y, [1, 10, 102, 20, 203, 30, 300], shape: [1, 1, 7])
  }

  @Test func padsCropTheFullOutput() throws {
    let y = try runFloat("ConvTranspose", [x1, w1], attributes: [.ints("strides", [2]), .ints("pads", [1, 2])])
    expectClose(y, [10, 102, 20, 203], shape: [1, 1, 4])
  }

  @Test func outputPaddingExtendsTheEndWithBias() throws {
    let y = try runFloat(
      "ConvTranspose", [x1, w1, floats([0.5], [1])],
      attributes: [.ints("strides", [2]), .ints("output_padding", [1])])
    expectClose(y, [1.5, 10.5, 102.5, 20.5, 203.5, 30.5, 300.5, 0.5], shape: [1, 1, 8])
  }

  @Test func stride2In2D() throws {
    // A 2×2 ones kernel at stride 2 copies each input element to a 2×2 block.
    let y = try runFloat(
      "ConvTranspose",
      [floats([1, 2, 3, 4], [1, 1, 2, 2]), NDArray([Float](repeating: 1, count: 4), shape: [1, 1, 2, 2])],
      attributes: [.ints("strides", [2, 2])])
    expectClose(y, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], shape: [1, 1, 4, 4])
  }

  @Test func dilations() throws {
    // Taps 0 and 2 on each axis: output (r, c) receives x[r mod 2, c mod 2].
    let y = try runFloat(
      "ConvTranspose",
      [floats([1, 2, 3, 4], [1, 1, 2, 2]), NDArray([Float](repeating: 1, count: 4), shape: [1, 1, 2, 2])],
      attributes: [.ints("dilations", [2, 2])])
    expectClose(y, [1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4], shape: [1, 1, 4, 4])
  }

  @Test func channelsAndGroups() throws {
    let x = floats([1, 2], [1, 2, 1, 1])
    let w = floats([1, 2, 3, 4], [2, 2, 1, 1])  // [C, M/G, 1, 1]
    // One group: y[m] = Σ_c x[c]·W[c, m].
    let dense = try runFloat("ConvTranspose", [x, w])
    expectClose(dense, [7, 10], shape: [1, 2, 1, 1])
    // Two groups: channel 0 feeds outputs 0 and 1, channel 1 outputs 2 and 3.
    let grouped = try runFloat("ConvTranspose", [x, w, floats([0, 0, 1, 1], [4])], attributes: [.int("group", 2)])
    expectClose(grouped, [1, 2, 7, 9], shape: [1, 4, 1, 1])
  }

  @Test(arguments: [
    ("SAME_UPPER", [Float(1), 10, 102, 20, 203, 30, 304, 40]),
    ("SAME_LOWER", [10, 102, 20, 203, 30, 304, 40, 400]),
  ])
  func autoPad(mode: String, expected: [Float]) throws {
    // Output 4·2 = 8 of the full 9: the one padding goes to the end (upper) or the start (lower).
    let y = try runFloat(
      "ConvTranspose", [floats([1, 2, 3, 4], [1, 1, 4]), w1],
      attributes: [.string("auto_pad", mode), .ints("strides", [2])])
    expectClose(y, expected, shape: [1, 1, 8])
  }

  @Test(arguments: [
    ("NOTSET", [Float(12), 123, 234, 340, 400]), ("SAME_UPPER", [1, 12, 123, 234, 340]),
    ("SAME_LOWER", [12, 123, 234, 340, 400]),
  ])
  func outputShape(mode: String, expected: [Float]) throws {
    // Full output 6, asked for 5: SAME_UPPER pads the end, the other modes the start.
    let y = try runFloat(
      "ConvTranspose", [floats([1, 2, 3, 4], [1, 1, 4]), w1],
      attributes: [.string("auto_pad", mode), .ints("output_shape", [5])])
    expectClose(y, expected, shape: [1, 1, 5])
    // With the batch and channel extents too.
    let long = try runFloat(
      "ConvTranspose", [floats([1, 2, 3, 4], [1, 1, 4]), w1],
      attributes: [.string("auto_pad", mode), .ints("output_shape", [1, 1, 5])])
    expectClose(long, expected, shape: [1, 1, 5])
  }

  @Test func valid() throws {
    let y = try runFloat("ConvTranspose", [x1, w1], attributes: [.string("auto_pad", "VALID"), .ints("strides", [2])])
    expectClose(y, [1, 10, 102, 20, 203, 30, 300], shape: [1, 1, 7])
  }

  @Test(arguments: 0..<6)
  func matchesReference(seed: Int) throws {
    // Random 1-D, 2-D and 3-D problems with groups, strides, dilations, pads and output padding.
    let rank = [1, 2, 3][seed % 3]
    let group = [1, 2, 3][seed % 3]
    let (cg, mg) = (2 + seed % 2, 1 + seed % 3)
    let input = (0..<rank).map { 2 + ($0 + seed) % 4 }
    let kernel = (0..<rank).map { 1 + ($0 + seed) % 3 }
    let strides = (0..<rank).map { 1 + ($0 + seed + 1) % 3 }
    let dilations = (0..<rank).map { 1 + ($0 + seed) % 2 }
    let outputPadding = (0..<rank).map { strides[$0] > 1 ? ($0 + seed) % 2 : 0 }
    let padsBegin = (0..<rank).map { ($0 + seed) % 2 }
    let padsEnd = (0..<rank).map { ($0 + seed + 1) % 3 }
    var output: [Int] = []
    for d in 0..<rank {
      output.append(
        strides[d] * (input[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1 - padsBegin[d] - padsEnd[d])
    }
    let x = random([2, cg * group] + input, seed: UInt64(seed))
    let w = random([cg * group, mg] + kernel, seed: UInt64(seed + 100))
    let b = random([mg * group], seed: UInt64(seed + 200))
    let y = try runFloat(
      "ConvTranspose", [x, w, b],
      attributes: [
        .int("group", group), .ints("strides", strides), .ints("dilations", dilations),
        .ints("pads", padsBegin + padsEnd), .ints("output_padding", outputPadding),
      ])
    let expected = referenceConvTranspose(
      x, w, b, group: group, strides: strides, dilations: dilations, padsBegin: padsBegin, output: output)
    expectClose(y, expected, tolerance: 1e-4)
  }

  @Test func pointwiseSkipsCol2Im() throws {
    let x = random([2, 6, 3, 5], seed: 7)
    let w = random([6, 4, 1, 1], seed: 8)
    let y = try runFloat("ConvTranspose", [x, w], attributes: [.int("group", 2)])
    let expected = referenceConvTranspose(
      x, w, nil, group: 2, strides: [1, 1], dilations: [1, 1], padsBegin: [0, 0], output: [3, 5])
    expectClose(y, expected, tolerance: 1e-4)
  }

  @Test func errors() {
    expectRuntimeError(containing: "input has 2 channels and weight [1, 1, 3]") {
      _ = try runFloat("ConvTranspose", [floats([1, 2], [1, 2, 1]), w1])
    }
    expectRuntimeError(containing: "attribute 'output_shape': has 2 values") {
      _ = try runFloat("ConvTranspose", [x1, w1], attributes: [.ints("output_shape", [4, 4])])
    }
    expectRuntimeError(containing: "the pads exceed the output") {
      _ = try runFloat("ConvTranspose", [x1, w1], attributes: [.ints("pads", [3, 3])])
    }
    expectRuntimeError(containing: "attribute 'kernel_shape': [2] disagrees") {
      _ = try runFloat("ConvTranspose", [x1, w1], attributes: [.ints("kernel_shape", [2])])
    }
  }
}
