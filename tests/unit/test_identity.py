from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from shared import bootstrap
from shared.identity import azure_credential


async def test_user_assigned_identity_when_a_client_id_is_set():
    credential = azure_credential({"AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa"})
    try:
        assert isinstance(credential, ManagedIdentityCredential)
    finally:
        await bootstrap.close_shared()


async def test_explicit_client_id_wins_over_the_setting():
    credential = azure_credential({}, client_id="00000000-0000-0000-0000-0000000000bb")
    try:
        assert isinstance(credential, ManagedIdentityCredential)
    finally:
        await bootstrap.close_shared()


async def test_default_chain_without_a_client_id():
    credential = azure_credential({})
    try:
        assert isinstance(credential, DefaultAzureCredential)
    finally:
        await bootstrap.close_shared()
