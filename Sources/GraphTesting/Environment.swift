import Foundation

/// Where the repository's files are, seen from the tests.
public enum TestEnvironment {
  /// The repository root, found from this source file's path.
  public static let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/GraphTesting/Environment.swift
    return url
  }()

  /// The committed fixture models.
  public static var fixtures: URL { repositoryRoot.appendingPathComponent("fixtures") }

  /// The path of a fixture file.
  public static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

  /// A new, empty directory under the system's temporary folder.
  public static func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
      .appendingPathComponent("rebirth-test-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// The `rebirth` executable built beside the test bundle.
  public static var rebirthExecutable: URL {
    if let explicit = ProcessInfo.processInfo.environment["REBIRTH_BIN"] { return URL(fileURLWithPath: explicit) }
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = runner.deletingLastPathComponent()
    // On Apple platforms the runner sits inside an .xctest bundle.
    while directory.pathExtension == "xctest" || directory.lastPathComponent == "MacOS" || directory.lastPathComponent == "Contents" {
      directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("rebirth")
  }
}

/// What a finished process printed and returned.
public struct ProcessResult: Sendable {
  public let status: Int32
  public let stdout: String
  public let stderr: String
}

/// Runs the `rebirth` executable with `arguments` and waits for it.
public func runRebirth(_ arguments: [String]) throws -> ProcessResult {
  let process = Process()
  process.executableURL = TestEnvironment.rebirthExecutable
  process.arguments = arguments
  let out = Pipe(), err = Pipe()
  process.standardOutput = out
  process.standardError = err
  process.standardInput = FileHandle.nullDevice
  try process.run()
  // Read both pipes before waiting, so a large output cannot block the child.
  let group = DispatchGroup()
  nonisolated(unsafe) var errData = Data()
  DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
  let outData = out.fileHandleForReading.readDataToEndOfFile()
  group.wait()
  process.waitUntilExit()
  return ProcessResult(
    status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
    stderr: String(decoding: errData, as: UTF8.self))
}
