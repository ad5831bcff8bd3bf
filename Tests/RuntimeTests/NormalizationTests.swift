import Foundation
import Graph
import Testing

@testable import Runtime

@Suite struct BatchNormalizationTests {
  let x = floats([1, 2, 3, 4], [1, 2, 1, 2])
  var parameters: [NDArray] {
    [floats([1, 2], [2]), floats([0, 1], [2]), floats([1, 2], [2]), floats([4, 1], [2])]
  }

  @Test func perChannelAffine() throws {
    // Channel 0: (x − 1)/2; channel 1: (x − 2)·2 + 1.
    let y = try runFloat("BatchNormalization", [x] + parameters, attributes: [.float("epsilon", 0)])
    expectClose(y, [0, 0.5, 3, 5], shape: [1, 2, 1, 2])
  }

  @Test func defaultEpsilon() throws {
    let y = try runFloat(
      "BatchNormalization",
      [floats([3], [1, 1])] + [floats([1], [1]), floats([0], [1]), floats([1], [1]), floats([1], [1])])
    expectClose(y, [2 / (1 + 1e-5 as Float).squareRoot()], shape: [1, 1])
  }

  @Test func trainingModeIsAnError() {
    expectRuntimeError(containing: "node 'n' (BatchNormalization): attribute 'training_mode': unsupported value 1") {
      _ = try runFloat("BatchNormalization", [x] + parameters, attributes: [.int("training_mode", 1)])
    }
    expectRuntimeError(containing: "training outputs") {
      _ = try run("BatchNormalization", [x] + parameters, outputs: 3, opset: 9)
    }
  }

  @Test func parameterShapeIsChecked() {
    expectRuntimeError(containing: "input 3 has shape [3]") {
      _ = try runFloat(
        "BatchNormalization",
        [x, floats([1, 2], [2]), floats([0, 1], [2]), floats([1, 2, 3], [3]), floats([4, 1], [2])])
    }
  }
}

@Suite struct LRNTests {
  let x = floats([1, 2, 3], [1, 3, 1, 1])

  @Test func oddSize() throws {
    // alpha/size = 1, beta = 1, bias = 1: y = x / (1 + Σ x²) over channels c−1 … c+1.
    let y = try runFloat("LRN", [x], attributes: [.int("size", 3), .float("alpha", 3), .float("beta", 1)])
    expectClose(y, [1.0 / 6, 2.0 / 15, 3.0 / 14], shape: [1, 3, 1, 1])
  }

  @Test func evenSizeLooksAhead() throws {
    // size 2: channels c … c+1.
    let y = try runFloat("LRN", [x], attributes: [.int("size", 2), .float("alpha", 2), .float("beta", 1)])
    expectClose(y, [1.0 / 6, 2.0 / 14, 3.0 / 10], shape: [1, 3, 1, 1])
  }

  @Test func defaultsAndSpatialExtent() throws {
    let input = random([2, 5, 3, 2], seed: 9)
    let y = try runFloat("LRN", [input], attributes: [.int("size", 5)])
    let xs = input.scalars(as: Float.self)
    var expected: [Float] = []
    for n in 0..<2 {
      for c in 0..<5 {
        for i in 0..<6 {
          var sum: Float = 0
          for k in max(0, c - 2)...min(4, c + 2) { sum += xs[(n * 5 + k) * 6 + i] * xs[(n * 5 + k) * 6 + i] }
          expected.append(xs[(n * 5 + c) * 6 + i] / powf(1 + 1e-4 / 5 * sum, 0.75))
        }
      }
    }
    expectClose(y, expected, shape: [2, 5, 3, 2])
  }

  @Test func sizeIsRequired() {
    expectRuntimeError(containing: "attribute 'size': is required") { _ = try runFloat("LRN", [x]) }
  }
}

@Suite struct SoftmaxTests {
  let x = floats([0, 0, 0, Float(1.0986123)], [2, 2])

  @Test func lastAxisFromOpset13() throws {
    expectClose(try runFloat("Softmax", [x]), [0.5, 0.5, 0.25, 0.75], shape: [2, 2])
  }

  @Test func innerAxisFromOpset13() throws {
    expectClose(try runFloat("Softmax", [x], attributes: [.int("axis", 0)]), [0.5, 0.25, 0.5, 0.75], shape: [2, 2])
  }

  @Test func flattensBeforeOpset13() throws {
    // axis 0 flattens everything into one row: exp = [1, 1, 1, 3] / 6.
    expectClose(
      try runFloat("Softmax", [x], attributes: [.int("axis", 0)], opset: 11), [1.0 / 6, 1.0 / 6, 1.0 / 6, 0.5],
      shape: [2, 2])
    // The default axis 1 of a [1, 2, 2] input also flattens the last two axes together.
    let x3 = x.reshaped([1, 2, 2])
    expectClose(try runFloat("Softmax", [x3], opset: 11), [1.0 / 6, 1.0 / 6, 1.0 / 6, 0.5], shape: [1, 2, 2])
    expectClose(try runFloat("Softmax", [x3], opset: 13), [0.5, 0.5, 0.25, 0.75], shape: [1, 2, 2])
  }

  @Test func largeValuesDoNotOverflow() throws {
    expectClose(try runFloat("Softmax", [floats([1000, 1000], [2])]), [0.5, 0.5], shape: [2])
    expectClose(
      try runFloat("LogSoftmax", [floats([0, Float(1.0986123)], [2])]), [-Float(1.3862944), Float(-0.28768207)],
      shape: [2])
  }

  @Test func badAxisIsAnError() {
    expectRuntimeError(containing: "attribute 'axis': 2 is out of range") {
      _ = try runFloat("Softmax", [x], attributes: [.int("axis", 2)])
    }
  }
}
