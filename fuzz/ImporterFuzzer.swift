// libFuzzer target for the ONNX importer (built by fuzz/build.sh, run by fuzz/run.sh).
//
// The property, for every input:
//   - `ONNXImporter.load(bytes:path:)` either throws an `ImportError` or returns a model;
//   - a returned model's graph (and every function body) passes `Graph.verify()`;
//   - `ONNXExporter.serialize` accepts it, the bytes import again, verify again, and serialize
//     to the same bytes (the first round trip reaches a fixed point).
// Anything else is a bug: a broken property traps through `fatalError` (libFuzzer saves the
// input as a crash), and so does a memory error (AddressSanitizer) or a Swift runtime trap.
//
// The same property is checked without libFuzzer by Tests/ImportersTests/FuzzRegressionTests.swift.

import Exporters
import Graph
import Importers

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The path the input is imported as. It labels errors and anchors external data: fuzz/run.sh
/// points REBIRTH_FUZZ_MODEL_DIR at a scratch folder holding a copy of the fixtures' external
/// data file, so inputs that name it exercise the external-data reader. Without it, external
/// data is looked for in a folder that does not exist.
private let modelPath: String = {
  if let dir = getenv("REBIRTH_FUZZ_MODEL_DIR") { return String(cString: dir) + "/model.onnx" }
  return "/nonexistent-rebirth-fuzz/model.onnx"
}()

/// REBIRTH_FUZZ_VERBOSE=1 prints one line per input that imported (to check that seeds reach
/// the round trip, e.g. `importer-fuzzer -runs=0 fixtures/*.onnx`).
private let verbose = getenv("REBIRTH_FUZZ_VERBOSE").map { String(cString: $0) == "1" } ?? false

private func bug(_ what: String) -> Never {
  fatalError("fuzz property broken: \(what)")
}

private func verifyAll(_ model: Model, _ stage: String) {
  do {
    try model.graph.verify()
  } catch {
    bug("\(stage): main graph does not verify: \(error)")
  }
  for function in model.functions {
    do {
      try function.body.verify()
    } catch {
      bug("\(stage): body of function '\(function.domain).\(function.name)' does not verify: \(error)")
    }
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let input = UnsafeRawBufferPointer(start: size == 0 ? nil : UnsafeRawPointer(data), count: size)
  let model: Model
  do {
    model = try ONNXImporter.load(bytes: input, path: modelPath)
  } catch {
    // Refused with an ImportError (the only error load can throw): fine.
    return 0
  }
  verifyAll(model, "import")
  let bytes: [UInt8]
  do {
    bytes = try ONNXExporter.serialize(model)
  } catch {
    bug("an imported, verified model does not serialize: \(error)")
  }
  let again: Model
  do {
    again = try ONNXImporter.load(bytes: bytes, path: modelPath)
  } catch {
    bug("the serialized model does not import again: \(error)")
  }
  verifyAll(again, "re-import")
  let bytesAgain: [UInt8]
  do {
    bytesAgain = try ONNXExporter.serialize(again)
  } catch {
    bug("the re-imported model does not serialize: \(error)")
  }
  if verbose {
    fputs("imported: \(model.graph.nodeIDs.count) nodes, \(bytes.count) bytes serialized\n", stderr)
  }
  if bytesAgain != bytes {
    let first = zip(bytes, bytesAgain).enumerated().first { $0.element.0 != $0.element.1 }?.offset
      ?? min(bytes.count, bytesAgain.count)
    bug("round trip is not a fixed point: \(bytes.count) vs \(bytesAgain.count) bytes, first difference at \(first)")
  }
  return 0
}
