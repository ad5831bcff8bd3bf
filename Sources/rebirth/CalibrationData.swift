import Foundation
import Graph
import Passes
import Runtime

/// `--calibration data.npz` and `--calibration-random N`: the samples approximate passes fit on.
///
/// In the archive each array is named after a model input. An array with exactly one more
/// dimension than its input declares holds one sample per index of its first axis, fed one at a
/// time (this serves models whose batch is fixed at 1); otherwise the array is fed as one batch
/// (one sample). Every input without a default needs an array, and every array must give the
/// same number of samples.
enum CalibrationData {
  static func load(npz path: String, for model: Model) throws(CLIError) -> Calibration {
    let members: [(name: String, array: NDArray)]
    do { members = try NumPyArchive.read(path: path) } catch { throw .usage("\(path): \(error.message)") }
    let inputs = declaredInputs(of: model)
    var perInput: [String: [NDArray]] = [:]
    for input in inputs where input.required {
      guard let array = members.first(where: { $0.name == input.name })?.array else {
        throw .usage("\(path): no array named '\(input.name)' (the model's inputs: \(inputs.map(\.name).joined(separator: ", ")))")
      }
      let rank = input.type?.tensorShape?.count
      if let rank, array.shape.count == rank + 1, let n = array.shape.first, n > 0 {
        let sampleShape = Array(array.shape.dropFirst())
        let size = sampleShape.reduce(1, *)
        perInput[input.name] = (0..<n).map { array.slice(elements: $0 * size..<($0 + 1) * size, shape: sampleShape) }
      } else {
        perInput[input.name] = [array]
      }
    }
    let counts = Set(perInput.values.map(\.count))
    guard counts.count <= 1 else {
      throw .usage("\(path): the arrays hold different numbers of samples (\(perInput.mapValues(\.count).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")))")
    }
    let count = counts.first ?? 0
    guard count > 0 else { throw .usage("\(path): no samples") }
    let samples = (0..<count).map { i in perInput.mapValues { $0[i] } }
    return Calibration(samples: samples, isRandom: false, source: "\(path) (\(count) samples)")
  }

  static func random(_ count: Int, for model: Model, seed: UInt64 = 0) throws(CLIError) -> Calibration {
    guard count > 0 else { throw .usage("--calibration-random needs at least 1 sample") }
    var samples: [[String: NDArray]] = []
    for i in 0..<count {
      samples.append(try RandomInputs(model: model, dims: [:], seed: seed &+ UInt64(i)).make())
    }
    return Calibration(samples: samples, isRandom: true, source: "\(count) random samples (a poor fit: give real data with --calibration)")
  }
}
