"""Import a Binder-ready repository: detect its configuration as repo2docker does and map it to a spec."""

from .detectors import DETECTORS, REPO_DIR, Detection, Detector, detect_repository
from .tree import ImportRefused, RepoTree, tree_of

__all__ = ["DETECTORS", "REPO_DIR", "Detection", "Detector", "ImportRefused", "RepoTree", "detect_repository",
           "tree_of"]
