"""The Conversation feed: reading, paging, posting and deleting, with and without htmx."""

import re


def feed_url(client_record, feed="conversation"):
    return f"/clients/{client_record.id}/feeds/{feed}"


def test_profile_shows_conversation_feed_first(logged_in, admin, household, make_message):
    make_message(household, admin, "Biscuit had a great walk")
    response = logged_in(admin).get(f"/clients/{household.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Biscuit had a great walk" in page
    assert re.search(r'role="tab" id="tab-conversation"[^>]*aria-selected="true"', page)
