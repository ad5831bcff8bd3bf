import Graph
import Testing

@testable import Runtime

@Suite struct MaxPoolTests {
  @Test func twoByTwoStrideTwo() throws {
    let y = try run(
      "MaxPool", [iota([1, 1, 4, 4])], attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])
    expectClose(y[0], [5, 7, 13, 15], shape: [1, 1, 2, 2])
  }

  @Test func indicesRowAndColumnMajor() throws {
    let attributes: [Attribute] = [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])]
    let x = iota([2, 1, 4, 4])
    let rowMajor = try run("MaxPool", [x], attributes: attributes, outputs: 2)
    #expect(rowMajor[1].scalars(as: Int64.self) == [5, 7, 13, 15, 21, 23, 29, 31])
    let columnMajor = try run("MaxPool", [x], attributes: attributes + [.int("storage_order", 1)], outputs: 2)
    #expect(columnMajor[1].scalars(as: Int64.self) == [5, 13, 7, 15, 21, 29, 23, 31])
  }

  @Test func ceilMode() throws {
    let x = iota([1, 1, 5, 5])
    let attributes: [Attribute] = [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])]
    let floor = try run("MaxPool", [x], attributes: attributes)
    expectClose(floor[0], [6, 8, 16, 18], shape: [1, 1, 2, 2])
    let ceil = try run("MaxPool", [x], attributes: attributes + [.int("ceil_mode", 1)])
    expectClose(ceil[0], [6, 8, 9, 16, 18, 19, 21, 23, 24], shape: [1, 1, 3, 3])
  }

  @Test func ceilModeDropsAWindowStartingInTheEndPadding() throws {
    // Width 5 with pads 1/1, kernel 2, stride 2: ceil gives 4 windows, but the 4th would start in the end padding.
    let y = try run(
      "MaxPool", [floats([1, 2, 3, 4, 5], [1, 1, 5])],
      attributes: [.ints("kernel_shape", [2]), .ints("strides", [2]), .ints("pads", [1, 1]), .int("ceil_mode", 1)])
    expectClose(y[0], [1, 3, 5], shape: [1, 1, 3])
  }

  @Test func pads() throws {
    let y = try run(
      "MaxPool", [floats([1, 2, 3, 4], [1, 1, 2, 2])],
      attributes: [.ints("kernel_shape", [2, 2]), .ints("pads", [1, 1, 1, 1])])
    expectClose(y[0], [1, 2, 2, 3, 4, 4, 3, 4, 4], shape: [1, 1, 3, 3])
  }

  @Test func dilationsAndSameUpper() throws {
    // Dilation 2 over width 5: taps (0, 2), (1, 3), (2, 4).
    let dilated = try run(
      "MaxPool", [floats([5, 1, 2, 9, 0], [1, 1, 5])],
      attributes: [.ints("kernel_shape", [2]), .ints("dilations", [2])])
    expectClose(dilated[0], [5, 9, 2], shape: [1, 1, 3])
    // SAME_UPPER, width 4, kernel 3, stride 2: windows [0, 2] and [2, 3] plus one end pad.
    let same = try run(
      "MaxPool", [floats([4, 1, 2, 3], [1, 1, 4])],
      attributes: [.ints("kernel_shape", [3]), .ints("strides", [2]), .string("auto_pad", "SAME_UPPER")])
    expectClose(same[0], [4, 3], shape: [1, 1, 2])
  }

  @Test func threeSpatialAxes() throws {
    let y = try run("MaxPool", [iota([1, 1, 2, 2, 2])], attributes: [.ints("kernel_shape", [2, 2, 1])])
    expectClose(y[0], [6, 7], shape: [1, 1, 1, 1, 2])
  }

  @Test func kernelShapeIsRequired() {
    expectRuntimeError(containing: "node 'n' (MaxPool): attribute 'kernel_shape': is required") {
      _ = try run("MaxPool", [iota([1, 1, 2, 2])])
    }
  }
}

@Suite struct AveragePoolTests {
  let x = floats([1, 2, 3, 4], [1, 1, 2, 2])
  let padded: [Attribute] = [.ints("kernel_shape", [2, 2]), .ints("pads", [1, 1, 1, 1])]

  @Test func excludePadDividesByValidTaps() throws {
    let y = try run("AveragePool", [x], attributes: padded)
    expectClose(y[0], [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], shape: [1, 1, 3, 3])
  }

  @Test func includePadDividesByWindow() throws {
    let y = try run("AveragePool", [x], attributes: padded + [.int("count_include_pad", 1)])
    expectClose(y[0], [0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1], shape: [1, 1, 3, 3])
  }

  @Test func ceilModeLastWindowIsPartial() throws {
    // Width 5, kernel 2, stride 2, ceil: windows [1, 2], [3, 4], [5].
    for include in [0, 1] {
      let y = try run(
        "AveragePool", [floats([1, 2, 3, 4, 5], [1, 1, 5])],
        attributes: [
          .ints("kernel_shape", [2]), .ints("strides", [2]), .int("ceil_mode", 1), .int("count_include_pad", include),
        ])
      expectClose(y[0], [1.5, 3.5, 5], shape: [1, 1, 3])
    }
  }

  @Test func ceilModeWithPadsCountsOnlyThePaddedExtent() throws {
    // Width 4, pads 1/1, kernel 3, stride 2, ceil: windows start at −1, 1, 3; the last covers
    // input 3, the end pad, and one tap past it that count_include_pad does not count.
    let attributes: [Attribute] = [
      .ints("kernel_shape", [3]), .ints("strides", [2]), .ints("pads", [1, 1]), .int("ceil_mode", 1),
      .int("count_include_pad", 1),
    ]
    let y = try run("AveragePool", [floats([1, 2, 3, 4], [1, 1, 4])], attributes: attributes)
    expectClose(y[0], [1, 3, 2], shape: [1, 1, 3])
  }

  @Test func globalAveragePool() throws {
    let y = try runFloat("GlobalAveragePool", [iota([1, 2, 2, 2])])
    expectClose(y, [1.5, 5.5], shape: [1, 2, 1, 1])
    let m = try runFloat("GlobalMaxPool", [iota([1, 2, 3])])
    expectClose(m, [2, 5], shape: [1, 2, 1])
  }

  @Test func emptyBatch() throws {
    let y = try run(
      "AveragePool", [NDArray(zeros: .float, shape: [0, 3, 4, 4])], attributes: [.ints("kernel_shape", [2, 2])])
    #expect(y[0].shape == [0, 3, 3, 3])
  }
}

/// Edge cases whose answers were taken from onnxruntime 1.x (CPU), which drops a ceil_mode window
/// that would start in the end padding and counts with count_include_pad only the padded extent.
@Suite struct PoolingMatchesOnnxruntime {
  struct Case: Sendable, CustomTestStringConvertible {
    let op: String
    let x: [Int]
    let attributes: [String: [Int]]
    let autoPad: String?
    let expected: [Float]
    var testDescription: String { "\(op) \(attributes.sorted { $0.key < $1.key }) \(autoPad ?? "")" }
  }

  @Test(arguments: [
    Case(
      op: "AveragePool", x: [1, 1, 7],
      attributes: ["kernel_shape": [3], "dilations": [2], "pads": [2, 2], "count_include_pad": [1]],
      autoPad: nil, expected: [0.6666667, 1.3333334, 2, 3, 4, 2.6666667, 3.3333333]),
    Case(
      op: "AveragePool", x: [1, 1, 7], attributes: ["kernel_shape": [3], "dilations": [2], "pads": [2, 2]],
      autoPad: nil, expected: [1, 2, 2, 3, 4, 4, 5]),
    Case(
      op: "MaxPool", x: [1, 1, 4], attributes: ["kernel_shape": [3], "strides": [2]], autoPad: "SAME_LOWER",
      expected: [1, 3]),
    Case(
      op: "AveragePool", x: [1, 1, 4], attributes: ["kernel_shape": [3], "strides": [2], "count_include_pad": [1]],
      autoPad: "SAME_UPPER", expected: [1, 1.6666666]),
    Case(
      op: "AveragePool", x: [1, 1, 10],
      attributes: ["kernel_shape": [3], "strides": [3], "pads": [1, 2], "ceil_mode": [1], "count_include_pad": [1]],
      autoPad: nil, expected: [0.33333334, 3, 6, 5.6666665]),
    Case(
      op: "AveragePool", x: [1, 1, 10],
      attributes: ["kernel_shape": [3], "strides": [3], "pads": [1, 2], "ceil_mode": [1]],
      autoPad: nil, expected: [0.5, 3, 6, 8.5]),
    Case(
      op: "MaxPool", x: [1, 1, 10],
      attributes: ["kernel_shape": [3], "strides": [3], "pads": [1, 2], "ceil_mode": [1]],
      autoPad: nil, expected: [1, 4, 7, 9]),
    Case(
      op: "AveragePool", x: [1, 1, 5, 5],
      attributes: [
        "kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": [1], "count_include_pad": [1],
      ],
      autoPad: nil, expected: [0.25, 1.25, 1, 8, 10, 5.75, 18, 20, 10.75]),
  ])
  func matches(_ c: Case) throws {
    var attributes = c.attributes.sorted { $0.key < $1.key }.map { key, value in
      ["count_include_pad", "ceil_mode"].contains(key) ? Attribute.int(key, value[0]) : Attribute.ints(key, value)
    }
    if let autoPad = c.autoPad { attributes.append(.string("auto_pad", autoPad)) }
    let y = try run(c.op, [iota(c.x)], attributes: attributes, opset: 19)[0]
    let shape = c.x.count == 4 ? [1, 1, 3, 3] : [1, 1, c.expected.count]
    expectClose(y, c.expected, shape: shape)
  }
}

/// The separable path (values only) and the direct path (values and indices) agree, and average
/// pooling matches a direct reference, over random windows of one to three axes.
@Suite struct PoolingPathsAgree {
  struct Case: Sendable, CustomTestStringConvertible {
    let x: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], ceil: Int
    var testDescription: String { "x\(x) k\(kernel) s\(strides) d\(dilations) p\(pads) ceil \(ceil)" }
  }

  static let cases = [
    Case(x: [2, 3, 9, 8], kernel: [3, 3], strides: [2, 2], dilations: [1, 1], pads: [1, 1, 1, 1], ceil: 0),
    Case(x: [1, 2, 10, 7], kernel: [3, 2], strides: [3, 2], dilations: [2, 1], pads: [2, 0, 1, 1], ceil: 1),
    Case(x: [1, 4, 13], kernel: [4], strides: [3], dilations: [1], pads: [1, 2], ceil: 1),
    Case(
      x: [1, 2, 5, 6, 7], kernel: [2, 3, 2], strides: [2, 1, 2], dilations: [1, 2, 1], pads: [1, 0, 1, 0, 1, 1], ceil: 0
    ),
  ]

  func attributes(_ c: Case) -> [Attribute] {
    [
      .ints("kernel_shape", c.kernel), .ints("strides", c.strides), .ints("dilations", c.dilations),
      .ints("pads", c.pads),
      .int("ceil_mode", c.ceil),
    ]
  }

  @Test(arguments: cases)
  func maxPaths(_ c: Case) throws {
    let x = random(c.x, seed: 21)
    let separable = try run("MaxPool", [x], attributes: attributes(c))[0]
    let direct = try run("MaxPool", [x], attributes: attributes(c), outputs: 2)
    #expect(separable.shape == direct[0].shape)
    #expect(separable.scalars(as: Float.self) == direct[0].scalars(as: Float.self))
    // Every index points at its maximum.
    let xs = x.scalars(as: Float.self)
    let ys = direct[0].scalars(as: Float.self)
    #expect(zip(direct[1].scalars(as: Int64.self), ys).allSatisfy { xs[Int($0)] == $1 })
  }

  @Test(arguments: cases)
  func averageMatchesDirectSums(_ c: Case) throws {
    let x = random(c.x, seed: 22)
    for include in [0, 1] {
      let y = try run("AveragePool", [x], attributes: attributes(c) + [.int("count_include_pad", include)])[0]
      let rank = c.kernel.count
      let geometry = WindowGeometry(
        input: Array(c.x[2...]), kernel: c.kernel, strides: c.strides, dilations: c.dilations,
        padsBegin: Array(c.pads[0..<rank]), padsEnd: Array(c.pads[rank...]), output: Array(y.shape[2...]))
      let xs = x.scalars(as: Float.self)
      var expected: [Float] = []
      let (planes, inSize, outSize) = (c.x[0] * c.x[1], geometry.inputSize, geometry.outputSize)
      for plane in 0..<planes {
        for o in 0..<outSize {
          var position = [Int](repeating: 0, count: rank)
          var rest = o
          for d in stride(from: rank - 1, through: 0, by: -1) {
            position[d] = rest % geometry.output[d]
            rest /= geometry.output[d]
          }
          var sum: Float = 0
          var inside = 0
          var padded = 1
          for d in 0..<rank { padded *= geometry.paddedTapCounts(axis: d)[position[d]] }
          for k in 0..<geometry.kernelSize {
            var tap = [Int](repeating: 0, count: rank)
            var r = k
            for d in stride(from: rank - 1, through: 0, by: -1) {
              tap[d] = r % c.kernel[d]
              r /= c.kernel[d]
            }
            var index = 0
            var ok = true
            for d in 0..<rank {
              let i = position[d] * c.strides[d] - c.pads[d] + tap[d] * c.dilations[d]
              if i < 0 || i >= c.x[d + 2] { ok = false }
              index = index * c.x[d + 2] + i
            }
            if ok {
              sum += xs[plane * inSize + index]
              inside += 1
            }
          }
          expected.append(sum / Float(include == 1 ? padded : inside))
        }
      }
      expectClose(y, expected, shape: y.shape)
    }
  }
}
