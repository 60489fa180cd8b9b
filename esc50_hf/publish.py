"""The Hugging Face Hub: what a repository id looks like, and publishing a model or dataset folder there."""

from pathlib import Path
from typing import Literal

from huggingface_hub import HfApi, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .errors import Esc50HfError


def is_hub_id(name: str) -> bool:
    """Whether `name` is a Hub repository id, `OWNER/NAME`, as huggingface_hub checks them (not a path like `./x/y`).

    Args:
        name (`str`): A model or dataset given on a command line or in code: a local folder or a Hub id.
    """
    if name.count("/") != 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


# Training by-products that are not part of the Hub model repository.
IGNORED_FOR_UPLOAD = ["checkpoint-*", "checkpoint-*/**", "feature_cache/**", "*.tmp"]


class HubPublishError(Esc50HfError, RuntimeError):
    """Publishing cannot work: no repository id, no token, or the Hub is unreachable."""


def check_can_push(repo_id: str | None, option: str = "--push_to_hub needs --hub_model_id", what: str = "model") -> str:
    """Fails early, with what to do, unless a token exists and the Hub accepts it; returns the user name.

    Args:
        repo_id (`str`, *optional*): The target `owner/name`.
        option (`str`, *optional*, defaults to `"--push_to_hub needs --hub_model_id"`): How the command line asks
            for `repo_id`, for the error message.
        what (`str`, *optional*, defaults to `"model"`): `"model"` or `"dataset"`: which folder is still written
            locally when publishing fails.

    Raises:
        `HubPublishError`: no `owner/name`, no token, or the Hub cannot be reached with it.
    """
    if not repo_id or "/" not in repo_id:
        raise HubPublishError(f"{option} owner/name, got {repo_id!r}.")
    token = get_token()
    if token is None:
        raise HubPublishError(
            f"Publishing needs a Hugging Face token: run `hf auth login` or set HF_TOKEN. "
            f"The {what} folder is still written locally."
        )
    try:
        return HfApi().whoami(token=token)["name"]
    except Exception as error:  # noqa: BLE001  (HTTP, DNS, offline mode: all mean "cannot publish")
        raise HubPublishError(
            f"Cannot reach the Hugging Face Hub with the token ({type(error).__name__}: {error}). "
            f"Check the network and HF_ENDPOINT; the {what} folder is still written locally."
        ) from error


def push_folder(
    folder: Path, repo_id: str, private: bool = False, repo_type: Literal["model", "dataset"] = "model"
) -> str:
    """Creates the repository if needed and uploads the folder (without training by-products); returns the commit's URL.

    Args:
        folder (`Path`): The model or dataset folder.
        repo_id (`str`): The target `owner/name`.
        private (`bool`, *optional*, defaults to `False`): Create the repository as private.
        repo_type (`str`, *optional*, defaults to `"model"`): `"model"` or `"dataset"`.
    """
    api = HfApi()
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type=repo_type,
        ignore_patterns=IGNORED_FOR_UPLOAD,
        commit_message=f"Upload esc50-hf {repo_type}",
    )
    return commit.commit_url
