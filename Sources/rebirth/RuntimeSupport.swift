import ArgumentParser
import Foundation
import Graph
import Linalg
import Runtime

// What `run`, `verify` and `bench` share: sessions, the inputs a model declares, feeds read from
// NumPy files or made up from a seed, and `.npy` output files.

/// `--input` and `--inputs`: arrays read from NumPy files.
struct FeedOptions: ParsableArguments {
  @Option(
    name: .customLong("input"),
    help: ArgumentHelp(
      "An input as NAME=FILE.npy (or FILE.npy for a model with one input). Repeatable; wins over --inputs.",
      valueName: "name=file.npy"))
  var files: [String] = []

  @Option(
    name: .customLong("inputs"),
    help: ArgumentHelp("A .npz archive of inputs, one member per input name.", valueName: "file.npz"))
  var archive: String?

  var isEmpty: Bool { files.isEmpty && archive == nil }
}

/// `--seed` and `--dim`: how made-up inputs are chosen.
struct RandomInputOptions: ParsableArguments {
  @Option(help: "Seed of the random inputs made when no inputs are given.")
  var seed: UInt64 = 0

  @Option(
    name: .customLong("dim"),
    help: ArgumentHelp(
      "The size of a symbolic input dimension, e.g. --dim N=8 (repeatable; other symbolic dims are 1).",
      valueName: "name=value"))
  var dims: [String] = []

  /// `--dim` as name → size.
  func parsedDims() throws(CLIError) -> [String: Int] {
    var out: [String: Int] = [:]
    for item in dims {
      let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard parts.count == 2, !parts[0].isEmpty, let size = Int(parts[1]), size >= 0 else {
        throw .usage("--dim \(item): expected NAME=SIZE with a non-negative integer SIZE, e.g. --dim N=8")
      }
      out[String(parts[0])] = size
    }
    return out
  }
}

/// `--threads`, default: every core. (Not through `SessionOptions()`, whose default argument builds
/// the kernel registry: `bench` calls this before starting its clock, and load_ms must include that.)
func threadCount(_ threads: Int?) throws(CLIError) -> Int {
  guard let threads else { return max(1, BLAS.processorCount) }
  guard threads >= 1 else { throw .usage("--threads must be at least 1, not \(threads)") }
  return threads
}

/// A graph input of a model: its declared type, and whether a caller must feed it.
struct DeclaredInput {
  let name: String
  let type: ValueType?
  /// False for inputs with a default initializer.
  let required: Bool

  var typeText: String { describe(type) }
}

/// The model's graph inputs, in order.
func declaredInputs(of model: Model) -> [DeclaredInput] {
  let g = model.graph
  return g.inputs.compactMap { id in
    guard case .input(let defaultValue) = g[id].definition else { return nil }
    return DeclaredInput(name: g[id].name, type: g[id].type, required: defaultValue == nil)
  }
}

/// A model loaded and ready to run.
struct LoadedModel {
  let path: String
  let model: Model
  let session: Session
  let inputs: [DeclaredInput]

  init(path: String, threads: Int) throws(CLIError) {
    self.path = path
    model = try loadModel(path)
    inputs = declaredInputs(of: model)
    do {
      session = try Session(model: model, options: SessionOptions(threadCount: threads))
    } catch {
      throw .badModel("\(path): \(error)")
    }
  }

  /// Runs the model on `feeds` (which must only name its inputs).
  func run(_ feeds: [String: NDArray]) throws(CLIError) -> [String: NDArray] {
    do { return try session.run(feeds) } catch { throw .badModel("\(path): \(error)") }
  }
}

// MARK: Feeds from files

/// Arrays to feed, by input name, each with where it came from (for messages).
typealias Feeds = [String: (array: NDArray, source: String)]

/// Arrays read from `--inputs` and `--input`, by name, each with the file it came from.
func readFeeds(_ options: FeedOptions, for model: LoadedModel) throws(CLIError) -> Feeds {
  var feeds: Feeds = [:]
  if let archive = options.archive {
    let arrays: [(name: String, array: NDArray)]
    do { arrays = try NumPyArchive.read(path: archive) } catch { throw .badModel("\(archive): \(error.message)") }
    for (name, array) in arrays { feeds[name] = (array, "\(archive) member '\(name)'") }
  }
  let required = model.inputs.filter(\.required)
  for item in options.files {
    let name: String, path: String
    if let equals = item.firstIndex(of: "=") {
      (name, path) = (String(item[..<equals]), String(item[item.index(after: equals)...]))
      guard !name.isEmpty, !path.isEmpty else {
        throw .usage("--input \(item): expected NAME=FILE.npy, or FILE.npy for a model with one input")
      }
    } else if required.count == 1 {
      (name, path) = (required[0].name, item)
    } else {
      let names = required.map(\.name).joined(separator: ", ")
      throw .usage("--input \(item): \(model.path) has \(required.count) inputs (\(names)): give each as NAME=FILE.npy")
    }
    do { feeds[name] = (try NumPyFile.read(path: path), path) } catch { throw .badModel("\(path): \(error.message)") }
  }
  return feeds
}

/// Checks `feeds` against what `model` declares: every name is an input, every required input is
/// fed, and each array has the input's element type and a shape its dims allow (a symbolic dim
/// takes one size across all inputs).
func checkFeeds(_ feeds: Feeds, for model: LoadedModel) throws(CLIError) {
  let names = model.inputs.map(\.name)
  for (name, feed) in feeds.sorted(by: { $0.key < $1.key }) where !names.contains(name) {
    throw .badModel(
      "\(feed.source): '\(name)' is not an input of \(model.path) (its inputs: \(names.joined(separator: ", ")))")
  }
  var symbolic: [String: (size: Int, input: String)] = [:]
  for input in model.inputs {
    guard let feed = feeds[input.name] else {
      guard !input.required else {
        throw .badModel(
          "\(model.path): input '\(input.name)' (\(input.typeText)) is not given: "
            + "use --input \(input.name)=FILE.npy or --inputs FILE.npz")
      }
      continue
    }
    let array = feed.array
    let got = "\(array.dtype)[\(array.shape.map(String.init).joined(separator: ","))]"
    guard case .tensor(let dtype, let dims)? = input.type else { continue }
    let mismatch = "\(feed.source): input '\(input.name)' expects \(input.typeText), got \(got)"
    guard array.dtype == dtype else { throw .badModel(mismatch) }
    guard let dims else { continue }
    guard dims.count == array.rank else { throw .badModel(mismatch) }
    for (dim, size) in zip(dims, array.shape) {
      switch dim {
      case .value(let v) where v >= 0: guard v == size else { throw .badModel(mismatch) }
      case .param(let p):
        if let bound = symbolic[p], bound.size != size {
          throw .badModel(
            "\(feed.source): input '\(input.name)' has \(p) = \(size), but input '\(bound.input)' has \(p) = \(bound.size)")
        }
        symbolic[p] = (size, input.name)
      default: break
      }
    }
  }
}

// MARK: Output files

/// `name` as a file name: every character other than ASCII letters, digits, `.`, `_` and `-`
/// becomes `_`.
func sanitizedFileName(_ name: String) -> String {
  String(
    name.unicodeScalars.map { c -> Character in
      let letterOrDigit = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
      return letterOrDigit || c == "." || c == "_" || c == "-" ? Character(c) : "_"
    })
}

/// Writes `files` (final path → bytes) so that a failure leaves none of them: each is written to a
/// temporary file beside its destination, and all are renamed into place once all are written.
func writeFilesAtomically(_ files: [(path: String, bytes: [UInt8])]) throws(CLIError) {
  var staged: [(temporary: String, final: String)] = []
  func cleanUp() { for file in staged { unlink(file.temporary) } }
  for (path, bytes) in files {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).rebirth-\(ProcessInfo.processInfo.processIdentifier).tmp").path
    do {
      try Data(bytes).write(to: URL(fileURLWithPath: temporary))
    } catch {
      unlink(temporary)
      cleanUp()
      throw .badModel("\(path): cannot write: \((error as NSError).localizedDescription)")
    }
    staged.append((temporary, path))
  }
  for file in staged {
    guard rename(file.temporary, file.final) == 0 else {
      let reason = String(cString: strerror(errno))
      cleanUp()
      throw .badModel("\(file.final): cannot move the written file into place: \(reason)")
    }
  }
}

/// A shape as the reports print it: `[1,3,224,224]`.
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
