import Foundation

/// A ready `sbatch` job-array script for a manifest (emconv never submits it).
public enum SlurmScript {
    public static func make(manifest: String, outputDirectory: String, shards: Int, maxConcurrent: Int?, cpus: Int,
                            memory: String, time: String, executable: String, extraArguments: [String]) -> String {
        let abs = { (p: String) -> String in p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p }
        let quote = { (s: String) -> String in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        var s = "#!/bin/bash\n"
        s += "# emconv batch as a SLURM job array: \(shards) shards over \(abs(manifest)).\n"
        s += "# Submit with: sbatch THIS_SCRIPT   (emconv never submits). Re-submitting is safe: finished outputs are skipped.\n"
        s += "#SBATCH --job-name=emconv\n"
        s += "#SBATCH --array=0-\(shards - 1)\(maxConcurrent.map { "%\($0)" } ?? "")\n"
        s += "#SBATCH --cpus-per-task=\(cpus)\n#SBATCH --mem=\(memory)\n#SBATCH --time=\(time)\n"
        s += "#SBATCH --output=\(abs(outputDirectory))/reports/slurm-%A_%a.out\n"
        s += "set -euo pipefail\n"
        s += "# HDF5 file locking fails on many shared filesystems (NFS, Lustre, GPFS).\nexport HDF5_USE_FILE_LOCKING=FALSE\n"
        s += "mkdir -p \(quote(abs(outputDirectory) + "/reports"))\n"
        s += ([quote(executable), "batch", "--from-manifest", quote(abs(manifest)), "-o", quote(abs(outputDirectory)),
               "--shard", "auto", "--skip-existing", "--progress", "plain"] + extraArguments.map(quote)).joined(separator: " ") + "\n"
        return s
    }
}
