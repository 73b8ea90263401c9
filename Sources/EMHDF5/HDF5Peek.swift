import EMCore
import Foundation

/// Cheap looks into an HDF5 file for identification: open, look at the root, close. Failures
/// (not HDF5, damaged) give nil; the reader's `open` reports them properly.
public enum HDF5Peek {
    /// Runs `body` on the root group of `path`, or returns nil when the file does not open.
    public static func root<T>(_ path: String, _ body: (HDF5Group) -> T) -> T? {
        HDF5.lock.withLock {
            guard let f = try? HDF5File(reading: path) else { return nil }
            return body(f.root)
        }
    }

    /// Names at the top level of `path` (for messages about unclaimed files).
    public static func topLevel(_ path: String) -> [String]? {
        root(path) { Array($0.childNames.prefix(64)) }
    }
}
