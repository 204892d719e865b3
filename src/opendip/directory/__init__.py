"""The disease-group directory (病种目录库): build from history, load, diff, export."""

from opendip.directory.build import BuiltDirectory, DirectoryBuildError, build_directory

__all__ = ["BuiltDirectory", "DirectoryBuildError", "build_directory"]
