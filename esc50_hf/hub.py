"""Publishing a model folder to the Hugging Face Hub."""

from pathlib import Path

from huggingface_hub import HfApi, get_token

# Training by-products that are not part of the Hub model repository.
IGNORED_FOR_UPLOAD = ["checkpoint-*", "checkpoint-*/**", "feature_cache/**", "*.tmp"]


class HubPublishError(RuntimeError):
    """Publishing cannot work: no repository id, no token, or the Hub is unreachable."""


def check_can_push(repo_id: str | None) -> str:
    """Fails early, with what to do, unless a token exists and the Hub accepts it; returns the user name."""
    if not repo_id or "/" not in repo_id:
        raise HubPublishError(f"--push_to_hub needs --hub_model_id owner/name, got {repo_id!r}.")
    token = get_token()
    if token is None:
        raise HubPublishError(
            "--push_to_hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN. "
            "The model folder is still written locally."
        )
    try:
        return HfApi().whoami(token=token)["name"]
    except Exception as error:  # noqa: BLE001  (HTTP, DNS, offline mode: all mean "cannot publish")
        raise HubPublishError(
            f"Cannot reach the Hugging Face Hub with the token ({type(error).__name__}: {error}). "
            "Check the network and HF_ENDPOINT; the model folder is still written locally."
        ) from error


def push_folder(folder: Path, repo_id: str, private: bool = False) -> str:
    """Creates the model repository if needed and uploads the folder (without training by-products)."""
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        ignore_patterns=IGNORED_FOR_UPLOAD,
        commit_message="Upload esc50-hf model",
    )
    return commit.commit_url
